"""`TrtEngine` itself (buffers, shapes, bucket selection, per-bucket contexts, CUDA-graph capture and its
fallback, checked TensorRT calls, memory) on the CPU: TensorRT is tests/fake_tensorrt.py and torch's
CUDA device memory, streams and graphs are its `CpuCuda` stand-in, put in `tensorrt.CUDA`'s place."""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from scaleproof.backends import tensorrt as trt_backend
from scaleproof.backends.trt_api import TrtOptions
from scaleproof.engine_store import read_sidecar
from scaleproof.errors import EngineMismatchError
from scaleproof.io_spec import InputSpec, ModelIO
from tests.fake_tensorrt import CpuCuda, FakeEngine, FakeTrt

# two inputs, two outputs; the model's output order is the engine's reversed
IO = ModelIO(inputs=[InputSpec(name="a", shape=["batch", 3]), InputSpec(name="b", shape=["batch", 2, 2])],
             outputs=["z", "y"])


def two_io_onnx(path: Path) -> Path:
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 2])
    axes = [helper.make_tensor("ax1", TensorProto.INT64, [1], [1]), helper.make_tensor("ax2", TensorProto.INT64, [1], [2])]
    nodes = [helper.make_node("ReduceSum", ["a", "ax1"], ["y"], keepdims=1),
             helper.make_node("ReduceSum", ["b", "ax2"], ["z"], keepdims=0)]
    model = helper.make_model(helper.make_graph(nodes, "g", [a, b], [y, z], initializer=axes),
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


@pytest.fixture
def engine_for(tmp_path, monkeypatch):
    """engine_for(version, **options) -> (fake tensorrt, loader of the built engine)."""
    def make(version: str = "10.13.0.35", **options):
        trt = FakeTrt(version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(trt_backend, "CUDA", CpuCuda(trt))
        inputs = trt_backend.BuildInputs(model_spec="two", io=IO, max_batch=8, threads=0,
                                         onnx_by_precision={"fp32": str(two_io_onnx(tmp_path / "two.onnx"))})
        sidecar = trt_backend.build(inputs, "fp32", tmp_path / version, "", TrtOptions(max_batch=8, **options))
        return trt, sidecar
    return make


def expected(feed: dict) -> list[np.ndarray]:
    rows = feed["a"].sum(axis=1) + feed["b"].reshape(len(feed["b"]), -1).sum(axis=1)
    return [np.repeat(2 * rows[:, None], 2, axis=1), rows[:, None]]  # z is the engine's 2nd output, y its 1st


def feed(n: int, seed: int = 0) -> dict:
    return IO.synthetic(n, np.random.default_rng(seed))


@pytest.mark.parametrize("version", ["10.13.0.35", "11.1.0"])
def test_a_graph_per_bucket_each_from_its_own_context_sharing_device_memory(engine_for, version):
    trt, sidecar = engine_for(version)
    engine = trt_backend.load(sidecar)
    info = engine.info()
    assert info["cuda_graph"] and info["graph_buckets"] == [1, 2, 4, 8] and info["execution_contexts"] == 4
    assert info["shared_device_memory"] and "cuda_graph_fallback" not in info
    scratch = {ctx.memory for ctx in engine._contexts.values()}
    assert len(scratch) == 1 and next(iter(scratch))[1] == FakeEngine.ACTIVATION_BYTES  # one block, all contexts
    for n in (8, 1, 3, 5, 2, 8):  # shapes never change under a captured graph (the fake raises if they do)
        x = feed(n, seed=n)
        out = engine.infer(x)
        for got, want in zip(out, expected(x), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5)
    assert [g.replays for g in (engine._graphs[b] for b in (1, 2, 4, 8))] == [1, 1, 1, 3]
    engine.load_samples(feed(20, seed=7))
    idx = np.array([3, 19, 0])
    got = engine.infer_indices(idx)
    want = expected({k: v[idx] for k, v in feed(20, seed=7).items()})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    engine.close()


def test_a_failed_enqueue_under_capture_falls_back_to_plain_enqueues(engine_for):
    trt, sidecar = engine_for()
    trt.capture_fails = True
    engine = trt_backend.load(sidecar)
    info = engine.info()
    assert not info["cuda_graph"] and info["execution_contexts"] == 1
    assert "failed under CUDA graph capture" in info["cuda_graph_fallback"]
    assert "not permitted when stream is capturing" in info["cuda_graph_fallback"]  # TensorRT's logged reason
    for n in (3, 8, 1):
        x = feed(n, seed=n)
        np.testing.assert_allclose(engine.infer(x)[1], expected(x)[1], rtol=1e-5)
    assert engine._ctx.shapes["a"] == (1, 3)  # exact batch sizes without graphs


def test_without_graphs_one_context_runs_exact_batch_sizes(engine_for):
    _, sidecar = engine_for(cuda_graph=False)
    engine = trt_backend.load(sidecar)
    assert engine.info()["execution_contexts"] == 1 and not engine.info()["shared_device_memory"]
    x = feed(5)
    np.testing.assert_allclose(engine.infer(x)[0], expected(x)[0], rtol=1e-5)
    assert engine._ctx.shapes == {"a": (5, 3), "b": (5, 2, 2)}


def test_on_10_0_each_bucket_context_has_its_own_memory(engine_for):
    trt, sidecar = engine_for("10.0.1")
    engine = trt_backend.load(sidecar)
    assert engine.info()["execution_contexts"] == 4 and not engine.info()["shared_device_memory"]
    assert engine.memory()["tensorrt_own_mb"] == (FakeEngine.WEIGHT_BYTES + 4 * FakeEngine.ACTIVATION_BYTES) / 2**20


def test_memory_includes_what_tensorrt_allocated_itself(engine_for):
    _, sidecar = engine_for()
    mem = trt_backend.load(sidecar).memory()
    assert mem["tensorrt_own_mb"] == FakeEngine.WEIGHT_BYTES / 2**20  # weights; activations come through torch
    assert mem["gpu_peak_allocated_mb"] == round(mem["torch_peak_allocated_mb"] + mem["tensorrt_own_mb"], 1)
    assert mem["torch_peak_allocated_mb"] >= FakeEngine.ACTIVATION_BYTES / 2**20
    assert mem["engine_device_memory_mb"] == FakeEngine.ACTIVATION_BYTES / 2**20


def test_a_false_from_set_input_shape_raises_naming_the_tensor_and_tensorrts_reason(engine_for):
    _, sidecar = engine_for(cuda_graph=False)
    sc = read_sidecar(sidecar)
    sc = replace(sc, input_profile={**sc.input_profile, "max_batch": 16})  # beyond the engine's profile
    with pytest.raises(trt_backend.TrtCallFailed, match=r"set_input_shape\('a', \(16, 3\)\) failed: .*outside the "
                                                        r"profile"):
        trt_backend.TrtEngine(sidecar.parent / sc.engine_file, sc)


def test_a_false_from_execute_async_v3_raises_with_tensorrts_reason(engine_for):
    _, sidecar = engine_for(cuda_graph=False)
    engine = trt_backend.load(sidecar)
    del engine._ctx.addresses["b"]
    with pytest.raises(trt_backend.TrtCallFailed, match=r"execute_async_v3 failed: .*no address set for \['b'\]"):
        engine.infer(feed(2))


def test_version_compatible_engine_loads_and_a_mismatched_plan_says_why(engine_for, monkeypatch):
    trt, sidecar = engine_for("10.8.0", version_compatible=True)
    sc = read_sidecar(sidecar)
    later = FakeTrt("10.9.0")
    monkeypatch.setitem(sys.modules, "tensorrt", later)
    monkeypatch.setattr(trt_backend, "CUDA", CpuCuda(later))
    engine = trt_backend.TrtEngine(sidecar.parent / sc.engine_file, sc)  # the lean runtime in the plan
    np.testing.assert_allclose(engine.infer(feed(2))[1], expected(feed(2))[1], rtol=1e-5)
    plain = replace(sc, extra={**sc.extra, "version_compatible": False})
    with pytest.raises(EngineMismatchError, match="could not deserialize .*engine_host_code_allowed is false"):
        trt_backend.TrtEngine(sidecar.parent / sc.engine_file, plain)


def test_the_stand_in_refuses_a_graph_replayed_after_its_contexts_shape_changed(engine_for):
    """What the old single-context capture did: every bucket captured from one context whose shape moved on."""
    trt, sidecar = engine_for(cuda_graph=False)
    engine = trt_backend.load(sidecar)
    ctx, cuda, stream = engine._ctx, trt_backend.CUDA, engine._stream
    assert ctx.execute_async_v3(stream.cuda_stream)  # run once before capture, at batch 8
    graph = cuda.graph()
    with cuda.capture(graph, stream):
        assert ctx.execute_async_v3(stream.cuda_stream)
    assert ctx.set_input_shape("a", (4, 3)) and ctx.set_input_shape("b", (4, 2, 2))
    with pytest.raises(RuntimeError, match="replayed after its context's input shapes"):
        graph.replay()
    assert ctx.set_input_shape("a", (2, 3))  # a shape not run since the last change cannot be captured
    with pytest.raises(RuntimeError, match="during capture"), cuda.capture(cuda.graph(), stream):
        assert not ctx.execute_async_v3(stream.cuda_stream)
