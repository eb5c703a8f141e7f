"""torchao's INT8, FP8 and weight-only INT8 engines on a real GPU (skipped where CUDA or torchao is absent): a
BERT-architecture encoder (transformers, test size) through export, build and validate, each engine's outputs
against FP32 across the batch buckets, and the accounting build.json keeps."""

import numpy as np
import pytest

from scaleproof import hardware, stages
from scaleproof.backends import low_precision
from scaleproof.config import Params
from scaleproof.stages import build, calibrate, export, validate

pytestmark = pytest.mark.gpu

ENCODER_INPUTS = [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [3, 1000]},
                  {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "seq"], "range": [1, 2]}]


@pytest.fixture(scope="module")
def lowp_run(tmp_path_factory):
    pytest.importorskip("torchao")
    if not hardware.has_cuda():
        pytest.skip("needs a CUDA GPU")
    params = Params(run_dir=str(tmp_path_factory.mktemp("lowp")), model="scaleproof.examples.sentence_encoder:build_small",
                    inputs=ENCODER_INPUTS, outputs=["embedding"], dims={"seq": 64}, metric="cosine",
                    precisions=["int8", "fp8", "int8-weight-only"], torch_modes=["compile"], backend="torch", max_batch=8,
                    batch_sizes=[1, 8], batcher_max_batch=8, calib_samples=32, val_samples=64, sensitivity=False)
    export.run(params)
    calibrate.run(params)  # backend=torch: no ONNX INT8 model, torchao builds INT8
    build.run(params)
    validate.run(params)
    return params


def entry(params, name):
    return next(e for e in stages.read_result(params.run_path, "03_build")["engines"] if e["name"] == name)


def test_each_precision_is_built_or_refused_for_this_gpu(lowp_run):
    built = stages.read_result(lowp_run.run_path, "03_build")
    names = {e["name"] for e in built["engines"]}
    cc = hardware.gpu_info()["compute_capability"]
    assert {"torch-int8-compile", "torch-int8-weight-only-compile"} <= names
    if tuple(int(p) for p in cc.split(".")) >= low_precision.FP8_MIN_CC:
        assert "torch-fp8-compile" in names
    else:
        assert any(s["engine"] == "torch-fp8-compile" and "8.9" in s["reason"] for s in built["skipped"])


def test_build_json_accounts_for_every_linear_layer(lowp_run):
    e = entry(lowp_run, "torch-int8-compile")
    lp = e["low_precision"]
    assert lp["linear_layers"] == 12  # 2 BERT layers x (q, k, v, attention output, intermediate, output)
    assert len(lp["quantized_layers"]) == 12 and lp["conv_layers"] == 0
    assert 0.5 < lp["quantized_flops_share"] == lp["linear_flops_share"] < 1.0  # attention's own matmuls stay 16-bit
    assert lp["torchao"] == low_precision.torchao_version()


def test_low_precision_engines_pass_the_cosine_gate(lowp_run):
    rows = {r["engine"]: r for r in stages.read_result(lowp_run.run_path, "04_validate")["engines"]}
    for name in ("torch-int8-compile", "torch-fp8-compile", "torch-int8-weight-only-compile"):
        if name in rows:
            assert rows[name]["passed"], rows[name]
            assert rows[name]["cosine_mean"] >= 0.99, rows[name]


@pytest.mark.parametrize("name", ["torch-int8-compile", "torch-fp8-compile", "torch-int8-weight-only-compile"])
def test_buckets_replay_the_engine_against_fp32(lowp_run, name):
    built = {e["name"] for e in stages.read_result(lowp_run.run_path, "03_build")["engines"]}
    if name not in built:
        pytest.skip(f"{name} not built on this GPU")
    engine = build.load_engine(lowp_run.run_path, entry(lowp_run, name))
    fp32 = build.load_engine(lowp_run.run_path, entry(lowp_run, "torch-fp32"))
    rng = np.random.default_rng(5)
    x = {"input_ids": rng.integers(3, 1000, (8, 64)), "attention_mask": np.ones((8, 64), np.int64)}
    info = engine.info()
    assert info["graph_buckets"] == [1, 2, 4, 8] and info["quantized_layers"] == 12
    for n in (1, 3, 5, 8):  # 3 and 5 replay padded in the 4 and 8 buckets
        got = engine.infer({k: v[:n] for k, v in x.items()})[0]
        ref = fp32.infer({k: v[:n] for k, v in x.items()})[0]
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        assert np.isfinite(got).all() and cos.min() > 0.98, (n, cos.min())
    mem = engine.memory()
    assert 0 < mem["gpu_weights_mb"] <= mem["gpu_allocated_mb"] <= mem["gpu_reserved_mb"]
