"""Stage 02: the INT8 Q/DQ model that keeps its accuracy, and the FP16 model, from the exported ONNX.

Calibrate (keyed cache), quantize every quantizable node, judge the result on the validation split
with the gate of 04_validate; rank nodes by sensitivity; if INT8 fails the gate, keep the most
sensitive nodes in FP32 until it passes (mixed precision); time each model on this CPU; optionally
compare calibration methods. The reference here is the FP32 ONNX model run by ONNX Runtime, which
01_export checked against PyTorch within `parity_atol`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import paths, sensitivity, stages
from .backends.onnxruntime import ort_session
from .bench.timing import time_engine
from .config import CalibMethod, Params, Precision
from .datasets import Split, select, splits_for
from .fp16 import to_fp16
from .provenance import sha256_array, sha256_file
from .quantize import check_calibration_data, make_quantizer, method_settings, qdq_summary, quantized_nodes
from .validate import BATCH as VALIDATE_BATCH
from .validate import engine_outputs, judge


class OnnxModel:
    """An ONNX file run by ONNX Runtime on this CPU, with what the timing harness and validate call."""

    max_batch = VALIDATE_BATCH

    def __init__(self, path: Path, input_name: str, threads: int) -> None:
        self._sess, self._input = ort_session(path, threads), input_name

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self._sess.run(None, {self._input: x})[0]


class Judge:
    """Judges a model file on the validation split against the FP32 ONNX outputs, with 04_validate's gate."""

    def __init__(self, fp32: Path, val: Split, input_name: str, params: Params) -> None:
        self.val, self.input_name, self.params = val, input_name, params
        self.ref = engine_outputs(OnnxModel(fp32, input_name, params.threads), val.x)

    def __call__(self, path: Path) -> dict[str, Any]:
        out = engine_outputs(OnnxModel(path, self.input_name, self.params.threads), self.val.x)
        return judge(self.ref, out, self.val.y, self.params)


def cpu_speed(path: Path, x: np.ndarray, input_name: str, params: Params) -> dict[str, Any]:
    """Throughput of one model on this CPU at the largest benchmark batch (a short, valid-checked timing)."""
    t = time_engine(OnnxModel(path, input_name, params.threads), x, warmup=3, min_repeats=10,
                    min_time_s=min(0.5, params.min_time_s), max_cov=params.max_cov)
    return {"batch": t.batch, "samples_per_s": round(t.throughput, 1), "p50_ms": round(t.p50_ms, 4),
            "valid": t.valid, "timing_reason": t.reason}


def say(msg: str) -> None:
    print(f"[scaleproof] {msg}", flush=True)


TIMING_BATCH = 32  # CPU timings here compare models with each other; one batch size is enough


def run(params: Params) -> dict[str, Any]:
    exported = stages.require(params, "01_export")
    run_dir = params.run_path
    src = paths.stage_dir(run_dir, "01_export") / exported["onnx"]
    out_dir = paths.stage_dir(run_dir, "02_calibrate")
    shape, input_name = tuple(exported["input_shape"]), exported["input_name"]
    splits = splits_for(exported["dataset"], shape, params.seed)
    calib = select(splits["calib"], params.calib_samples, params.seed)
    check_calibration_data(calib, input_name, shape)
    val = select(splits["val"], params.val_samples, params.seed) if params.val_samples else splits["val"]
    judged = Judge(src, val, input_name, params)
    result: dict[str, Any] = {
        "source_onnx_sha256": exported["onnx_sha256"],
        "reference": "FP32 ONNX model on ONNX Runtime (CPU)",
        "val_samples": len(val),
        "gate": {"max_top1_drop_pts": params.max_top1_drop} if val.y is not None
                else {"min_agreement": params.min_agreement},
    }
    if Precision.int8 in params.precisions:
        timing_x = np.ascontiguousarray(np.resize(val.x, (TIMING_BATCH, *shape)))
        result.update(int8_model(params, src, out_dir, calib, judged, timing_x, input_name))
        say(result["statement"])
    else:
        result.update(int8_onnx=None, statement="no INT8 model: int8 is not in precisions")
    fp16 = to_fp16(src, out_dir / "model.fp16.onnx")
    result["fp16"] = {**fp16, **sensitivity.summary(judged(out_dir / fp16["fp16_onnx"]))}
    stages.write_result(run_dir, "02_calibrate", result)
    return result


def int8_model(params: Params, src: Path, out_dir: Path, calib: Split, judged: Judge, timing_x: np.ndarray,
               input_name: str) -> dict[str, Any]:
    """Calibrate, quantize, rank, fall back to mixed precision if needed, time; the INT8 part of the result."""
    cache_dir = Path(params.calib_cache_dir).resolve() if params.calib_cache_dir else out_dir / "cache"
    work = out_dir / ".work"  # scratch models; removed at the end
    quantizer = make_quantizer(params.quantizer, src, work, calib.x, input_name, params.per_channel, cache_dir)
    try:
        method = params.calib_method
        settings = method_settings(method, params.calib_percentile)
        ranges, cache = quantizer.ranges(method, settings)
        say(f"calibration ranges ({method.value}): {cache['status']}")
        full = quantizer.quantize(out_dir / "model.int8.onnx", method, settings, ranges)
        full_row = judged(full)
        nodes = quantized_nodes(full)
        say(f"INT8 ({len(nodes)} quantized nodes): {full_row['reason']}")

        needs_mixed = params.mixed_precision and not full_row["passed"]
        ranking = []
        if params.sensitivity or needs_mixed:
            ranking = sensitivity.rank_nodes(
                nodes, lambda n: quantizer.quantize(work / "one-node.onnx", method, settings, ranges,
                                                    nodes_to_quantize=[n]), judged, progress=say)
        chosen, chosen_row, mixed = full, full_row, None
        if needs_mixed:
            mixed_path = out_dir / "model.int8-mixed.onnx"
            mixed = sensitivity.mixed_precision(
                ranking, lambda kept: quantizer.quantize(mixed_path, method, settings, ranges, nodes_to_exclude=kept),
                judged, params.mixed_precision_max_nodes, progress=say)
            if mixed["passed"]:
                chosen, chosen_row = mixed_path, mixed["steps"][-1]
            else:
                mixed_path.unlink(missing_ok=True)
        kept = mixed["kept_fp32"] if mixed and mixed["passed"] else []

        speed = {"fp32": cpu_speed(src, timing_x, input_name, params),
                 "int8_all_nodes": cpu_speed(full, timing_x, input_name, params)}
        if chosen != full:
            speed["int8_mixed"] = cpu_speed(chosen, timing_x, input_name, params)
        methods = compare_methods(params, quantizer, judged, timing_x, input_name, work,
                                  {method: (full_row, speed["int8_all_nodes"], cache)})
    finally:
        quantizer.close()
    return {
        "int8_onnx": chosen.name,
        "int8_onnx_sha256": sha256_file(chosen),
        "int8_all_nodes_onnx": full.name,
        "quantizer": quantizer.name,
        "quantizer_version": quantizer.version,
        "quantizer_requested": params.quantizer.value,
        "format": "QDQ, S8S8, symmetric activations and weights",
        "calib_method": method.value,
        "calib_settings": settings,
        "per_channel": params.per_channel,
        "calib_samples": len(calib),
        "calib_labels": None if calib.y is None else np.bincount(calib.y).tolist(),
        "calib_data_sha256": sha256_array(calib.x),
        # paths inside the run are kept relative: the run folder is renamed when it is published
        "calib_cache": {k: v.replace(f"{out_dir.parent}/", "") for k, v in {**cache, "dir": str(cache_dir)}.items()},
        "int8_all_nodes": sensitivity.summary(full_row),
        "int8": sensitivity.summary(chosen_row),
        "int8_passed": bool(chosen_row["passed"]),
        "kept_fp32": kept,
        "statement": sensitivity.statement(len(kept), len(nodes), chosen_row),
        "sensitivity": ranking,
        "mixed_precision": None if mixed is None else {k: v for k, v in mixed.items() if k != "model"},
        "speed_cpu": speed,
        "methods": methods,
        "qdq": qdq_summary(chosen),
    }


def compare_methods(params: Params, quantizer, judged: Judge, timing_x: np.ndarray, input_name: str, work: Path,
                    done: dict[CalibMethod, tuple[dict[str, Any], dict[str, Any], dict[str, str]]]) -> list[dict]:
    """Top-1 delta and INT8 CPU speed of every method in `calib_compare` (all nodes quantized)."""
    rows = []
    for m in params.calib_compare:
        if m in done:
            row, speed, cache = done[m]
        else:
            settings = method_settings(m, params.calib_percentile)
            ranges, cache = quantizer.ranges(m, settings)
            path = quantizer.quantize(work / f"compare-{m.value}.onnx", m, settings, ranges)
            row, speed = judged(path), cpu_speed(path, timing_x, input_name, params)
        rows.append({"method": m.value, **({"percentile": params.calib_percentile} if m is CalibMethod.percentile
                                           else {}), **sensitivity.summary(row), "int8_cpu": speed,
                     "cache": cache["status"]})
        say(f"method {m.value}: {rows[-1]['reason']}, {speed['samples_per_s']:,.0f} samples/s")
    return rows
