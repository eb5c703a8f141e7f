"""The ONNX Runtime CUDA engine (onnxruntime-gpu, the `gpu` extra) on the CPU: when it is planned and refused (and
why), and its build, load and IOBinding run path with ONNX Runtime's CPU provider standing in for the CUDA one
(onnxruntime-gpu is not installed here)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from scaleproof.backends import by_name, onnxruntime_cuda
from scaleproof.backends.base import BuildInputs
from scaleproof.config import Backend, Precision, TorchMode
from scaleproof.engine_store import read_sidecar
from scaleproof.io_spec import ModelIO
from scaleproof.stages.build import Capabilities, plan_engines

P = [Precision.fp32, Precision.fp16, Precision.int8]


def test_onnx_gpu_adds_fp32_and_fp16_ort_cuda_engines_beside_the_torch_ones():
    caps = Capabilities(cuda=True, tensorrt=False, ort_cuda=True)
    planned, _ = plan_engines(Backend.auto, P, caps, [TorchMode.compile], onnx_gpu=True)
    assert [s.name for s in planned] == ["torch-fp32", "torch-fp32-compile", "torch-fp16-compile", "torch-int8-compile",
                                         "onnxruntime_cuda-fp32", "onnxruntime_cuda-fp16"]
    planned, _ = plan_engines(Backend.auto, P, caps, [TorchMode.compile])
    assert not any(s.backend == "onnxruntime_cuda" for s in planned)  # only when asked


def test_without_the_cuda_provider_the_engines_are_skipped_with_how_to_install_it():
    caps = Capabilities(cuda=True, tensorrt=False, ort_cuda=False)
    planned, skipped = plan_engines(Backend.auto, [Precision.fp16], caps, [TorchMode.compile], onnx_gpu=True)
    assert [s.name for s in planned] == ["torch-fp32", "torch-fp16-compile"]
    reason = next(s["reason"] for s in skipped if s["engine"] == "onnxruntime_cuda-fp16")
    assert "has no CUDAExecutionProvider" in reason and "pip install 'scaleproof[gpu]'" in reason
    assert onnxruntime_cuda.refusal("cpu") == "ONNX Runtime's CUDA engine needs a CUDA GPU; this machine has none"
    assert onnxruntime_cuda.supported("cpu") == {}


def linear_model(path, w, b):
    """y = x @ w + b with a dynamic batch axis."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def test_build_load_and_io_binding_run_with_the_cpu_provider_standing_in(tmp_path, monkeypatch):
    monkeypatch.setattr(onnxruntime_cuda, "PROVIDER", "CPUExecutionProvider")
    monkeypatch.setattr(onnxruntime_cuda, "DEVICE", "cpu")
    monkeypatch.setattr(onnxruntime_cuda, "refusal", lambda device: None)
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((16, 4), dtype=np.float32), rng.standard_normal(4, dtype=np.float32)
    linear_model(tmp_path / "model.onnx", w, b)
    io = ModelIO(inputs=[{"name": "x", "dtype": "float32", "shape": ["batch", 16]}], outputs=["y"])
    inputs = BuildInputs(model_spec="m", io=io, onnx_by_precision={"fp32": str(tmp_path / "model.onnx")}, max_batch=8,
                         threads=1)
    sidecar = onnxruntime_cuda.build(inputs, "fp32", tmp_path / "store", "export/model.onnx")
    engine = by_name("onnxruntime_cuda").load(sidecar)
    assert engine.name == "onnxruntime_cuda-fp32" and engine.device == "cuda"
    for n in (1, 5, 8):  # the binding is cleared and rebound for each batch size
        x = rng.standard_normal((n, 16), dtype=np.float32)
        np.testing.assert_allclose(engine.infer({"x": x})[0], x @ w + b, rtol=1e-5, atol=1e-5)
    info = engine.info()
    assert info["io_binding"] == "cpu" and info["providers"] == ["CPUExecutionProvider"]
    assert info["cuda_graph"].startswith("not captured")
    record = onnxruntime_cuda.build_record(read_sidecar(sidecar))
    assert record["onnxruntime_cuda"]["providers"] == ["CPUExecutionProvider"]
