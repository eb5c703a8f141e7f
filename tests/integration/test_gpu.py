"""PyTorch CUDA engines on a real GPU (skipped where CUDA is absent; run on an H100 80GB HBM3, 2026-11-25 and 2026-11-26)."""

import numpy as np
import pytest

from scaleproof import hardware, stages
from scaleproof.backends import torch as torch_backend
from scaleproof.bench.loadgen import LoadgenSettings, Scenario, run_scenario
from scaleproof.config import Params
from scaleproof.engine_store import check_engine, read_sidecar
from scaleproof.errors import EngineMismatchError
from scaleproof.stages import build, export, validate

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    params = Params(run_dir=str(tmp_path_factory.mktemp("gpu")), precisions=["fp32", "fp16", "bf16"],
                    torch_modes=["eager", "cuda_graph", "compile"], max_batch=64)
    export.run(params)
    build.run(params)
    validate.run(params)
    return params


def entry(params, name):
    return next(e for e in stages.read_result(params.run_path, "03_build")["engines"] if e["name"] == name)


def test_engines_are_stored_under_this_gpu(gpu_run):
    built = stages.read_result(gpu_run.run_path, "03_build")
    assert built["device_slug"] == hardware.device_slug() and not built["device_slug"].startswith("cpu-")
    assert {e["name"] for e in built["engines"]} >= {"torch-fp32", "torch-fp16-cuda_graph", "torch-bf16-compile"}
    for e in built["engines"]:
        sc = read_sidecar(gpu_run.run_path / "build" / e["sidecar"])
        assert sc.device_slug == built["device_slug"] and sc.compute_capability == hardware.gpu_info()["compute_capability"]


def test_every_cuda_engine_keeps_digits_accuracy(gpu_run):
    v = stages.read_result(gpu_run.run_path, "04_validate")
    for row in v["engines"]:
        assert row["passed"], row
        assert row["top1_agreement"] >= 0.99 and row["top1_delta_pts"] >= -1.0


@pytest.mark.parametrize("name", ["torch-fp32-cuda_graph", "torch-fp16-compile"])
def test_graph_buckets_give_the_eager_outputs(gpu_run, name):
    eager = build.load_engine(gpu_run.run_path, entry(gpu_run, "torch-fp32"))
    graphed = build.load_engine(gpu_run.run_path, entry(gpu_run, name))
    x = np.random.default_rng(0).random((64, 1, 8, 8), dtype=np.float32)
    tol = 1e-4 if "fp32" in name else 5e-2
    for n in (1, 3, 17, 64):  # 3 and 17 run padded in the 4 and 32 buckets
        np.testing.assert_allclose(graphed.infer({"input": x[:n]})[0], eager.infer({"input": x[:n]})[0], atol=tol, rtol=tol)
    info = graphed.info()
    assert info["graph_buckets"] == [1, 2, 4, 8, 16, 32, 64] and info["load_seconds"] > 0
    mem = graphed.memory()
    assert mem["gpu_peak_allocated_mb"] > 0


def test_gpu_engine_is_refused_on_another_device(gpu_run):
    e = entry(gpu_run, "torch-fp16-cuda_graph")
    other = {"device_slug": "a100-sxm4-80gb", "device_name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}
    with pytest.raises(EngineMismatchError, match="rebuild"):
        check_engine(gpu_run.run_path / "build" / e["sidecar"], torch_backend.version(), device=other)


def test_loadgen_drives_a_cuda_engine_through_pinned_buffers(gpu_run, tmp_path):
    engine = build.load_engine(gpu_run.run_path, entry(gpu_run, "torch-fp16-cuda_graph"))
    x = np.random.default_rng(1).random((256, 1, 8, 8), dtype=np.float32)
    buf = engine.host_buffer((4, 1, 8, 8))
    import torch

    assert torch.from_numpy(buf).is_pinned()
    cfg = LoadgenSettings(min_duration_s=1.0, min_queries=500, sla_p99_ms=15.0, max_batch=32, max_delay_ms=1.0)
    run = run_scenario(engine, {"input": x}, Scenario.server, cfg, tmp_path, target_qps=2000)
    assert run.valid and run.p99_ms < 15


def test_samples_loaded_on_the_device_give_the_host_path_outputs(gpu_run):
    for name in ("torch-fp32", "torch-fp16-cuda_graph"):
        engine = build.load_engine(gpu_run.run_path, entry(gpu_run, name))
        x = np.random.default_rng(2).random((100, 1, 8, 8), dtype=np.float32)
        engine.load_samples({"input": x})
        idx = np.array([5, 2, 99, 5, 0], dtype=np.int64)
        np.testing.assert_allclose(engine.infer_indices(idx)[0], engine.infer({"input": x[idx]})[0], atol=1e-5, rtol=1e-5)


def test_launched_batches_give_the_synchronous_outputs(gpu_run):
    """A graph engine runs two batches at once for the batcher: three batches in one bucket (sharing its static
    buffers), launched and collected as the batcher does, each keep their own outputs until answered."""
    engine = build.load_engine(gpu_run.run_path, entry(gpu_run, "torch-fp16-cuda_graph"))
    assert engine.inflight == 2
    x = np.random.default_rng(3).random((100, 1, 8, 8), dtype=np.float32)
    engine.load_samples({"input": x})
    rng = np.random.default_rng(4)
    batches = [rng.choice(100, n, replace=False).astype(np.int64) for n in (40, 41, 33)]  # all in bucket 64
    expected = [engine.infer_indices(b)[0].copy() for b in batches]
    a, b = engine.launch_indices(batches[0]), engine.launch_indices(batches[1])
    np.testing.assert_array_equal(a()[0], expected[0])
    c = engine.launch_indices(batches[2])  # reuses the first batch's host buffers, as the batcher would
    np.testing.assert_array_equal(b()[0], expected[1])
    np.testing.assert_array_equal(c()[0], expected[2])
    eager = build.load_engine(gpu_run.run_path, entry(gpu_run, "torch-fp32"))
    assert eager.inflight == 1  # no graphs: each batch finishes in its call


IDS_AND_FEATURES = [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [0, 100]},
                    {"name": "features", "dtype": "float32", "shape": ["batch", 4]}]


def test_a_model_with_int64_ids_and_float_features_runs_on_cuda_engines(tmp_path):
    """Several inputs of several dtypes: FP16 casts only the float input; graphs and device samples hold both."""
    params = Params(run_dir=str(tmp_path), model="tests.user_models:ids_and_features", inputs=IDS_AND_FEATURES,
                    dims={"seq": 12}, precisions=["fp32", "fp16"], torch_modes=["eager", "cuda_graph"], max_batch=32,
                    batch_sizes=[1, 8], batcher_max_batch=16, calib_samples=64)
    export.run(params)
    build.run(params)
    v = validate.run(params)
    assert set(v["passed"]) >= {"torch-fp32", "torch-fp16-cuda_graph"}, v["failed"]
    graphed = build.load_engine(params.run_path, entry(params, "torch-fp16-cuda_graph"))
    rng = np.random.default_rng(3)
    x = {"input_ids": rng.integers(0, 100, (50, 12)), "features": rng.random((50, 4), dtype=np.float32)}
    graphed.load_samples(x)
    idx = np.array([3, 1, 49], dtype=np.int64)
    np.testing.assert_allclose(graphed.infer_indices(idx)[0], graphed.infer({k: v[idx] for k, v in x.items()})[0],
                               atol=1e-3, rtol=1e-3)
    cfg = LoadgenSettings(min_duration_s=0.5, min_queries=200, sla_p99_ms=15.0, max_batch=16, max_delay_ms=1.0)
    assert run_scenario(graphed, x, Scenario.server, cfg, tmp_path / "lg", target_qps=1000).valid
