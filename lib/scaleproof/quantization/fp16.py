"""FP16 as a model artifact: weights and compute in float16, graph inputs and outputs kept float32.

Backends that take precision from the model (TensorRT 11's strongly typed networks) build FP16
engines from this file; callers keep feeding and reading float32. The conversion is ONNX Runtime's
(`onnxruntime.transformers.float16`), which leaves ops without FP16 kernels in FP32 behind casts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..onnx_io import load_onnx_checked
from ..provenance import atomic_path, sha256_file


def to_fp16(src: Path, dst: Path) -> dict[str, Any]:
    """Write the FP16 model of `src` to `dst` atomically; returns what it holds."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = load_onnx_checked(src, load_external=True)
    half = convert_float_to_float16(model, keep_io_types=True)
    # the converter appends the input casts at the end of the node list; ONNX (and parsers) need them first
    OnnxModel(half).topological_sort(is_deterministic=True)
    with atomic_path(dst) as tmp:
        onnx.save_model(half, str(tmp))
    load_onnx_checked(dst, load_external=False)  # the ONNX checker passes on what was written
    inits = half.graph.initializer
    return {
        "fp16_onnx": dst.name,
        "fp16_onnx_sha256": sha256_file(dst),
        "converter": "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)",
        "fp16_initializers": sum(i.data_type == onnx.TensorProto.FLOAT16 for i in inits),
        "initializers": len(inits),
        "io_dtype": "float32",
    }
