"""Stage 02: INT8 post-training quantization into an explicit Q/DQ ONNX model (ONNX Runtime's tooling).

Precision lives in the model (Q/DQ nodes), so every backend, TensorRT 11 included, consumes the
same calibrated artifact. Activations are symmetric INT8 (zero point 0), which TensorRT requires
and ONNX Runtime recommends on x86 (S8S8 QDQ).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import paths, stages
from .config import CalibMethod, Params
from .datasets import Split, select, splits_for
from .errors import ParamsError
from .onnx_io import load_onnx_checked
from .provenance import atomic_path, package_versions, sha256_array, sha256_file

CALIB_BATCH = 32


def check_calibration_data(split: Split, input_name: str, input_shape: tuple[int, ...]) -> None:
    """Refuse data that cannot calibrate this model, before any quantization work."""
    x = split.x
    expected = f"(N, {', '.join(map(str, input_shape))}) float32"
    if len(x) == 0:
        raise ParamsError(f"calibration data for input {input_name!r} is empty; expected {expected} with N > 0")
    if x.dtype != np.float32:
        raise ParamsError(f"calibration data for input {input_name!r} has dtype {x.dtype}; expected {expected}")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ParamsError(f"calibration data for input {input_name!r} has shape {tuple(x.shape)}; expected {expected}")
    if not np.isfinite(x).all():
        raise ParamsError(f"calibration data for input {input_name!r} contains NaN/Inf")


def _reader(x: np.ndarray, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class BatchReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{input_name: x[i:i + CALIB_BATCH]} for i in range(0, len(x), CALIB_BATCH)])

        def get_next(self):
            return next(self._batches, None)

    return BatchReader()


def quantize_qdq(src: Path, dst: Path, calib_x: np.ndarray, input_name: str, method: CalibMethod,
                 per_channel: bool, exclude_nodes: tuple[str, ...] = ()) -> Path:
    """Calibrate `src` on `calib_x` and write the Q/DQ model to `dst` atomically."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    ort_method = {CalibMethod.minmax: CalibrationMethod.MinMax, CalibMethod.entropy: CalibrationMethod.Entropy,
                  CalibMethod.percentile: CalibrationMethod.Percentile}[method]
    with atomic_path(dst.with_suffix(".prep.onnx")) as prep:
        quant_pre_process(str(src), str(prep), skip_symbolic_shape=False)
        with atomic_path(dst) as tmp:
            quantize_static(
                str(prep), str(tmp), _reader(calib_x, input_name), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                calibrate_method=ort_method, nodes_to_exclude=list(exclude_nodes),
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
            )
    dst.with_suffix(".prep.onnx").unlink(missing_ok=True)
    return dst


def qdq_summary(path: Path) -> dict[str, Any]:
    model = load_onnx_checked(path, load_external=False)
    ops = Counter(n.op_type for n in model.graph.node)
    compute = [n for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    return {"nodes": len(model.graph.node), "quantize_nodes": ops["QuantizeLinear"],
            "dequantize_nodes": ops["DequantizeLinear"], "compute_nodes": len(compute)}


def run(params: Params) -> dict[str, Any]:
    exported = stages.require(params, "01_export")
    run_dir = params.run_path
    src = paths.stage_dir(run_dir, "01_export") / exported["onnx"]
    out_dir = paths.stage_dir(run_dir, "02_calibrate")
    shape = tuple(exported["input_shape"])
    calib = select(splits_for(exported["dataset"], shape, params.seed)["calib"], params.calib_samples, params.seed)
    check_calibration_data(calib, exported["input_name"], shape)

    dst = quantize_qdq(src, out_dir / "model.int8.onnx", calib.x, exported["input_name"], params.calib_method,
                       params.per_channel)
    result = {
        "source_onnx_sha256": sha256_file(src),
        "int8_onnx": dst.name,
        "int8_onnx_sha256": sha256_file(dst),
        "quantizer": "onnxruntime.quantization.quantize_static",
        "quantizer_version": package_versions().get("onnxruntime"),
        "format": "QDQ, S8S8, symmetric activations and weights",
        "calib_method": params.calib_method.value,
        "per_channel": params.per_channel,
        "calib_samples": len(calib),
        "calib_labels": None if calib.y is None else np.bincount(calib.y).tolist(),
        "calib_data_sha256": sha256_array(calib.x),
        "qdq": qdq_summary(dst),
    }
    stages.write_result(run_dir, "02_calibrate", result)
    return result
