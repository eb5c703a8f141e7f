"""INT8 post-training quantization into explicit Q/DQ ONNX models: ONNX Runtime's tooling, or NVIDIA
ModelOpt's ONNX PTQ where it is installed.

Precision lives in the model (Q/DQ nodes), so every backend, TensorRT 11 included, consumes the
same calibrated artifact. The INT8 format is chosen for the CPU that runs it (`int8_format`): S8S8,
symmetric (zero point 0, which TensorRT requires and ONNX Runtime recommends on x86), with 7-bit weights
on CPUs without VNNI; weights are per channel by default.

ONNX Runtime calibrates once per (model, data, method, settings) and the activation ranges go to a
keyed cache (`calib_cache`); every later model of the stage (sensitivity, mixed precision, methods
compared) is quantized from those ranges without running the calibration data again.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import json
import logging
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import CalibMethod, Quantizer, QuantScope
from ..datasets import Split
from ..errors import ParamsError
from ..io_spec import Feed, ModelIO, feed_len, feed_slice
from ..onnx_io import load_onnx_checked
from ..provenance import atomic_path, package_versions, sha256_array, sha256_file
from . import calib_cache
from .embedding_tables import quantize_tables
from .int8_format import FormatChoice

logger = logging.getLogger(__name__)

CALIB_BATCH = 32


class _NoAxisWarnings(logging.Filter):
    """ONNX Runtime logs "Axis 1 is out-of-range for weight …" on the root logger for every 1-D weight
    (LayerNorm) of every model it quantizes per channel: hundreds of identical lines that say nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is out-of-range for weight" not in record.getMessage()


logging.getLogger().addFilter(_NoAxisWarnings())
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
MODELOPT_METHODS = {CalibMethod.minmax: "max", CalibMethod.entropy: "entropy"}  # ModelOpt has no percentile


MATMUL_OPS = ["MatMul", "Gemm"]


def op_types(scope: QuantScope) -> list[str] | None:
    """Op types a scope quantizes (None: every op the quantizer supports)."""
    return None if scope is QuantScope.all else MATMUL_OPS


def check_calibration_data(split: Split, io: ModelIO) -> None:
    """Refuse data that cannot calibrate this model, before any quantization work."""
    io.check_feed(split.x, "calibration data")


def resolve_quantizer(choice: Quantizer) -> str:
    """`auto` takes ModelOpt when it is importable, ONNX Runtime otherwise; `modelopt` must be there."""
    has_modelopt = importlib.util.find_spec("modelopt") is not None and \
        importlib.util.find_spec("modelopt.onnx.quantization") is not None
    if choice is Quantizer.modelopt and not has_modelopt:
        raise ParamsError("quantizer=modelopt needs NVIDIA ModelOpt (pip install 'scaleproof[modelopt]'; it pulls "
                          "onnxruntime-gpu and CuPy); use quantizer=onnxruntime or auto")
    if choice is Quantizer.auto:
        return "modelopt" if has_modelopt else "onnxruntime"
    return choice.value


ENTROPY_BINS = (2048, 128)  # histogram bins, quantized bins: TensorRT's entropy calibration uses the same


def method_settings(method: CalibMethod, percentile: float, symmetric: bool = True) -> dict[str, Any]:
    """The calibrator settings of a method (ONNX Runtime's `create_calibrator` options; part of the cache key).

    Entropy is given 2048 histogram bins explicitly: with ONNX Runtime's defaults as `quantize_static`
    passes them (128 bins, 128 quantized bins) there is a single candidate threshold, the full range,
    and entropy calibration gives exactly the min-max scales. `symmetric`: False for U8U8's asymmetric
    activations.
    """
    settings: dict[str, Any] = {"symmetric": symmetric}
    if method is CalibMethod.entropy:
        settings.update(num_bins=ENTROPY_BINS[0], num_quantized_bins=ENTROPY_BINS[1])
    elif method is CalibMethod.percentile:
        settings.update(num_bins=2048, percentile=percentile)
    return settings


def ort_methods() -> dict[CalibMethod, Any]:  # built on call: importing ONNX Runtime's quantization is slow
    from onnxruntime.quantization import CalibrationMethod

    return {CalibMethod.minmax: CalibrationMethod.MinMax, CalibMethod.entropy: CalibrationMethod.Entropy,
            CalibMethod.percentile: CalibrationMethod.Percentile}


def _reader(x: Feed):
    from onnxruntime.quantization import CalibrationDataReader

    class BatchReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([feed_slice(x, i, i + CALIB_BATCH) for i in range(0, feed_len(x), CALIB_BATCH)])

        def get_next(self):
            return next(self._batches, None)

    return BatchReader()


class OrtQuantizer:
    """ONNX Runtime `quantize_static` over one pre-processed model and one calibration set."""

    name = "onnxruntime"

    def __init__(self, src: Path, work_dir: Path, calib_x: Feed, per_channel: bool, cache_dir: Path,
                 fmt: FormatChoice, scope: QuantScope = QuantScope.all, tables: bool = False) -> None:
        from onnxruntime.quantization import quantize_static

        from ..hardware import cpu_slug

        self.version = package_versions().get("onnxruntime", "unknown")
        self.calib_x, self.per_channel, self.scope, self.fmt = calib_x, per_channel, scope, fmt
        self.device = cpu_slug()  # ONNX Runtime calibrates on the CPU, also on a GPU host: its kernels are in the key
        self.source_sha256, self.data_sha256 = sha256_file(src), sha256_array(*calib_x.values())
        self.work_dir, self.cache_dir = work_dir, cache_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.model = work_dir / "model.prep.onnx"  # shape inference + ORT's pre-quantization graph clean-up
        self.prep = prepare(src, self.model)
        # embedding tables: their Gathers are left to quantize_tables, which writes INT8 rows with per-row scales
        # into every model this quantizer writes (ONNX Runtime would give a table one scale, or leave it FP32)
        self.quantize_tables = tables
        self.table_nodes = table_gathers(self.model) if tables else []
        self.tables: dict[str, Any] = {}  # what the last model written holds (shared with with_scope's copies)
        # ORT >= 1.32 quantizes from stored ranges; older ones calibrate on every call (slower, same result)
        self.reuses_ranges = "calibration_cache_path" in inspect.signature(quantize_static).parameters

    def with_scope(self, scope: QuantScope) -> OrtQuantizer:
        """The same prepared model and data, quantizing another scope (ranges are shared)."""
        other = copy.copy(self)
        other.scope = scope
        return other

    def cache_path(self, method: CalibMethod) -> Path:
        return self.cache_dir / f"{self.source_sha256[:16]}-{method.value}.calib.json"

    def key(self, method: CalibMethod, settings: dict[str, Any]) -> dict[str, Any]:
        return calib_cache.cache_key(self.source_sha256, self.data_sha256, method.value, settings,
                                     self.name, self.version, self.device)

    def ranges(self, method: CalibMethod, settings: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """Activation ranges for `method`: from the keyed cache when it matches, else calibrated and stored."""
        if not self.reuses_ranges:
            return None, {"status": "unsupported",
                          "reason": f"onnxruntime {self.version} cannot quantize from stored ranges: every model "
                                    "is calibrated inside quantize_static, with its own histogram defaults"}
        path = self.cache_path(method)
        found = calib_cache.lookup(path, self.key(method, settings))
        if found.ranges is not None:
            return found.ranges, found.as_dict()
        if found.status != "miss":
            logger.info(found.reason)
        ranges = self._calibrate(method, settings)
        bad = calib_cache.range_problems(ranges)
        if bad:  # never store what a later lookup would refuse: say it, and quantize from these ranges once
            logger.warning(f"calibration gave unusable ranges ({bad}); not stored in the cache")
            return ranges, {**found.as_dict(), "stored": None, "unusable": bad}
        calib_cache.store(path, self.key(method, settings), ranges)
        return ranges, {**found.as_dict(), "stored": str(path)}

    def _calibrate(self, method: CalibMethod, settings: dict[str, Any]) -> dict[str, Any]:
        """Run the calibration data through the model with ONNX Runtime's calibrator; ranges as cache JSON."""
        from onnxruntime.quantization import create_calibrator
        from onnxruntime.quantization.calibrate import save_tensors_data

        calibrator = create_calibrator(self.model, None, augmented_model_path=str(self.work_dir / "augmented.onnx"),
                                       calibrate_method=ort_methods()[method], extra_options=settings)
        calibrator.collect_data(_reader(self.calib_x))
        ranges_file = self.work_dir / f"ranges-{method.value}.json"
        save_tensors_data(calibrator.compute_data(), ranges_file)
        return json.loads(ranges_file.read_text())

    def quantize(self, dst: Path, method: CalibMethod, settings: dict[str, Any], ranges: dict[str, Any] | None,
                 nodes_to_quantize: list[str] | None = None, nodes_to_exclude: tuple[str, ...] = ()) -> Path:
        """Write the Q/DQ model to `dst` atomically, from `ranges` (or by calibrating where ORT is older);
        the dynamic scope needs no ranges."""
        if self.scope is QuantScope.dynamic:
            self._quantize_dynamic(dst, nodes_to_quantize, nodes_to_exclude)
            return self._with_int8_tables(dst)
        ranges_file = None
        if ranges is not None:
            ranges_file = self.work_dir / f"ranges-{method.value}.json"
            ranges_file.write_text(json.dumps(ranges))
        with atomic_path(dst) as tmp:
            self._quantize_static(tmp, method, settings, ranges_file, calibrate=ranges is None,
                                  nodes_to_quantize=nodes_to_quantize, nodes_to_exclude=nodes_to_exclude)
        return self._with_int8_tables(dst)

    def _with_int8_tables(self, dst: Path) -> Path:
        if self.quantize_tables:
            self.tables.update(quantize_tables(dst, dst))
        return dst

    def _quantize_static(self, dst: Path, method: CalibMethod, settings: dict[str, Any], ranges_file: Path | None,
                         calibrate: bool, nodes_to_quantize: list[str] | None = None,
                         nodes_to_exclude: tuple[str, ...] = ()) -> None:
        from onnxruntime.quantization import QuantFormat, quantize_static

        ort_method = ort_methods()[method]
        activation_type, weight_type = self.fmt.quant_types()
        extra = {"ActivationSymmetric": self.fmt.symmetric_activations, "WeightSymmetric": self.fmt.symmetric_activations}
        if "percentile" in settings:
            extra["CalibPercentile"] = settings["percentile"]
        kwargs: dict[str, Any] = {}
        if ranges_file is not None:
            kwargs["calibration_cache_path"] = str(ranges_file)
        quantize_static(
            str(self.model), str(dst), _reader(self.calib_x) if calibrate else None,
            quant_format=QuantFormat.QDQ, activation_type=activation_type, weight_type=weight_type,
            per_channel=self.per_channel, reduce_range=self.fmt.reduce_range, calibrate_method=ort_method, nodes_to_quantize=nodes_to_quantize,
            nodes_to_exclude=[*nodes_to_exclude, *self.table_nodes], op_types_to_quantize=op_types(self.scope),
            extra_options=extra,
            **kwargs,
        )

    def _quantize_dynamic(self, dst: Path, nodes_to_quantize: list[str] | None,
                          nodes_to_exclude: tuple[str, ...]) -> Path:
        """ONNX Runtime dynamic INT8: weights quantized ahead, activations per batch at run time (CPU)."""
        from onnxruntime.quantization import quantize_dynamic

        with atomic_path(dst) as tmp:  # activations are UINT8 at run time: the same saturation rule applies
            quantize_dynamic(str(self.model), str(tmp), weight_type=self.fmt.quant_types()[1],
                             per_channel=self.per_channel, reduce_range=self.fmt.reduce_range,
                             op_types_to_quantize=MATMUL_OPS, nodes_to_quantize=nodes_to_quantize,
                             nodes_to_exclude=[*nodes_to_exclude, *self.table_nodes])
        return dst

    def close(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)


class ModelOptQuantizer:
    """NVIDIA ModelOpt's ONNX PTQ (TensorRT's Q/DQ placement rules); calibrates on every call."""

    name = "modelopt"

    def __init__(self, src: Path, work_dir: Path, calib_x: Feed, per_channel: bool, cache_dir: Path,
                 fmt: FormatChoice, scope: QuantScope = QuantScope.all, tables: bool = False) -> None:
        self.tables: dict[str, Any] = {}  # ModelOpt quantizes the source model as it is: tables stay FP32
        self.fmt = fmt  # S8S8 only (choose_int8_format refuses the others for ModelOpt)
        if scope is QuantScope.dynamic:
            raise ParamsError("quant_scope=dynamic is ONNX Runtime's dynamic INT8: use quantizer=onnxruntime")
        self.model, self.calib_x, self.scope = src, calib_x, scope
        self.version = package_versions().get("nvidia-modelopt", "unknown")
        self.work_dir = work_dir
        self.reuses_ranges = False
        self.prep = {"shape_inference": "ModelOpt's own"}

    def with_scope(self, scope: QuantScope) -> ModelOptQuantizer:
        if scope is QuantScope.dynamic:
            raise ParamsError("quant_scope=dynamic is ONNX Runtime's dynamic INT8: use quantizer=onnxruntime")
        other = copy.copy(self)
        other.scope = scope
        return other

    def ranges(self, method: CalibMethod, settings: dict[str, Any]) -> tuple[None, dict[str, str]]:
        if method not in MODELOPT_METHODS:
            raise ParamsError(f"ModelOpt calibrates with {', '.join(m.value for m in MODELOPT_METHODS)}, "
                              f"not {method.value}; use quantizer=onnxruntime for {method.value}")
        return None, {"status": "unsupported", "reason": "ModelOpt calibrates on every call"}

    def quantize(self, dst: Path, method: CalibMethod, settings: dict[str, Any], ranges: None,
                 nodes_to_quantize: list[str] | None = None, nodes_to_exclude: tuple[str, ...] = ()) -> Path:
        from modelopt.onnx.quantization import quantize as modelopt_quantize

        self.ranges(method, settings)
        with atomic_path(dst) as tmp:
            modelopt_quantize(
                onnx_path=str(self.model), quantize_mode="int8", calibration_data=dict(self.calib_x),
                op_types_to_quantize=op_types(self.scope),
                calibration_method=MODELOPT_METHODS[method], calibration_eps=["cpu"],
                nodes_to_quantize=nodes_to_quantize, nodes_to_exclude=list(nodes_to_exclude) or None,
                output_path=str(tmp),
            )
        return dst

    def close(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)


def table_gathers(model_path: Path) -> list[str]:
    """Names of the Gather nodes that read an embedding table (quantize_tables quantizes those, not ONNX Runtime)."""
    from .embedding_tables import tables_of

    graph = load_onnx_checked(model_path, load_external=False).graph
    tables = tables_of(graph)
    return [n.name for n in graph.node if n.op_type == "Gather" and n.input[0] in tables]


def make_quantizer(choice: Quantizer, src: Path, work_dir: Path, calib_x: Feed, per_channel: bool, cache_dir: Path,
                   fmt: FormatChoice, scope: QuantScope = QuantScope.all,
                   tables: bool = False) -> OrtQuantizer | ModelOptQuantizer:
    cls = {"onnxruntime": OrtQuantizer, "modelopt": ModelOptQuantizer}[resolve_quantizer(choice)]
    return cls(src, work_dir, calib_x, per_channel, cache_dir, fmt, scope, tables)


def prepare(src: Path, dst: Path) -> dict[str, Any]:
    """ONNX Runtime's pre-quantization step (shape inference, graph clean-up). Its symbolic shape
    inference fails on some exports (transformers under the dynamo exporter: "Incomplete symbolic
    shape inference" on an Expand); ONNX's own shape inference is then enough for quantization."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src).resolve(), Path(dst).resolve()
    try:  # on failure ORT saves its partial model into the working directory: give it a scratch one
        with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
        return {"shape_inference": "symbolic"}
    except Exception as e:  # ORT raises a bare Exception here
        with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return {"shape_inference": "onnx (symbolic shape inference failed: " + str(e).splitlines()[0][:120] + ")"}


def quantized_nodes(path: Path, source: Path | None = None) -> list[dict[str, str]]:
    """Nodes that run in INT8: in a Q/DQ model the compute nodes that read a dequantized tensor; in a
    dynamic-INT8 model the source's MatMul/Gemm nodes that were replaced (given the source)."""
    graph = load_onnx_checked(path, load_external=False).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    nodes = [{"node": n.name, "op_type": n.op_type} for n in graph.node
             if n.op_type not in QDQ_OPS and any(i in dequantized for i in n.input)]
    if nodes or source is None:
        return nodes
    kept = {n.name for n in graph.node}
    src = load_onnx_checked(source, load_external=False).graph
    return [{"node": n.name, "op_type": n.op_type} for n in src.node if n.op_type in MATMUL_OPS and n.name not in kept]


def qdq_summary(path: Path, source: Path | None = None) -> dict[str, Any]:
    model = load_onnx_checked(path, load_external=False)
    ops = Counter(n.op_type for n in model.graph.node)
    compute = [n for n in model.graph.node if n.op_type not in QDQ_OPS]
    return {"nodes": len(model.graph.node), "quantize_nodes": ops["QuantizeLinear"],
            "dequantize_nodes": ops["DequantizeLinear"], "compute_nodes": len(compute),
            "dynamic_quantize_nodes": ops["DynamicQuantizeLinear"] + ops["DynamicQuantizeMatMul"],
            "int8_nodes": len(quantized_nodes(path, source))}
