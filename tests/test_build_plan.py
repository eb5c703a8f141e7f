import pytest
from scaleproof.build import Capabilities, plan_engines
from scaleproof.config import Backend, Precision
from scaleproof.errors import ParamsError

P = [Precision.fp32, Precision.fp16, Precision.int8]


def test_auto_on_cpu_builds_onnxruntime_and_the_baseline():
    planned, skipped = plan_engines(Backend.auto, P, Capabilities(cuda=False, tensorrt=False))
    assert planned == [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]
    assert skipped == [{"engine": "onnxruntime-fp16", "reason": "onnxruntime on cpu does not build fp16"}]


def test_auto_on_gpu_prefers_tensorrt_then_torch_cuda():
    planned, _ = plan_engines(Backend.auto, P, Capabilities(cuda=True, tensorrt=True))
    assert planned == [("torch", "fp32"), ("tensorrt", "fp32"), ("tensorrt", "fp16"), ("tensorrt", "int8")]
    planned, skipped = plan_engines(Backend.auto, P, Capabilities(cuda=True, tensorrt=False))
    assert planned == [("torch", "fp32"), ("torch", "fp16")]
    assert skipped[0]["engine"] == "torch-int8"


def test_tensorrt_asked_for_without_it_is_an_error():
    with pytest.raises(ParamsError, match="no TensorRT"):
        plan_engines(Backend.tensorrt, P, Capabilities(cuda=True, tensorrt=False))
    with pytest.raises(ParamsError, match="no CUDA GPU"):
        plan_engines(Backend.tensorrt, P, Capabilities(cuda=False, tensorrt=False))
