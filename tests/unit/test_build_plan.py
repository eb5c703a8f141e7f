import pytest

from scaleproof.config import Backend, Precision, TorchMode
from scaleproof.errors import ParamsError
from scaleproof.stages.build import Capabilities, EngineSpec, plan_engines

P = [Precision.fp32, Precision.fp16, Precision.int8]


def names(planned):
    return [s.name for s in planned]


def test_auto_on_cpu_builds_onnxruntime_and_the_baseline():
    planned, skipped = plan_engines(Backend.auto, P, Capabilities(cuda=False, tensorrt=False))
    assert names(planned) == ["torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"]
    assert skipped == [{"engine": "onnxruntime-fp16", "reason": "onnxruntime on cpu does not build fp16"}]


def test_auto_on_gpu_prefers_tensorrt_then_torch_cuda_with_its_modes():
    planned, _ = plan_engines(Backend.auto, P, Capabilities(cuda=True, tensorrt=True))
    assert names(planned) == ["torch-fp32", "tensorrt-fp32", "tensorrt-fp16", "tensorrt-int8"]
    modes = [TorchMode.eager, TorchMode.cuda_graph, TorchMode.compile]
    planned, skipped = plan_engines(Backend.auto, P, Capabilities(cuda=True, tensorrt=False), modes)
    assert names(planned) == ["torch-fp32", "torch-fp32-cuda_graph", "torch-fp32-compile", "torch-fp16",
                              "torch-fp16-cuda_graph", "torch-fp16-compile", "torch-int8-compile"]
    # torchao's INT8 is compiled only: eager and plain CUDA graphs of it are not built
    assert {s["engine"] for s in skipped} == {"torch-int8", "torch-int8-cuda_graph"}


def test_torch_graph_modes_need_cuda():
    planned, skipped = plan_engines(Backend.torch, [Precision.fp32], Capabilities(cuda=False, tensorrt=False),
                                    [TorchMode.eager, TorchMode.cuda_graph])
    assert planned == [EngineSpec("torch", "fp32", "eager")]
    assert skipped == [{"engine": "torch-fp32-cuda_graph", "reason": "torch on cpu does not build fp32 cuda_graph"}]


def test_tensorrt_asked_for_without_it_is_an_error():
    with pytest.raises(ParamsError, match="no TensorRT"):
        plan_engines(Backend.tensorrt, P, Capabilities(cuda=True, tensorrt=False))
    with pytest.raises(ParamsError, match="no CUDA GPU"):
        plan_engines(Backend.tensorrt, P, Capabilities(cuda=False, tensorrt=False))
