"""Stage 02: the INT8 model that keeps its accuracy, and the FP16 model, from the exported ONNX.

Calibrate (keyed cache), quantize the nodes of the scope (with `quant_scope: auto`: every op, MatMul/Gemm
only, and on a CPU machine dynamic INT8), judge each on the validation split with the gate of 04_validate;
if none passes, keep the most sensitive nodes (or groups of nodes) of a scope in FP32 until it passes
(mixed precision, within a time budget); of the scopes inside the gate keep the fastest on this CPU, timed as the benchmark times engines (its harness,
settings and batch sizes);
rank nodes by sensitivity; optionally compare calibration methods. The reference here is the FP32 ONNX model
run by ONNX Runtime, which 01_export checked against PyTorch within `parity_atol`.

Every candidate model is loaded, judged and timed in a child process (`isolate`): a native crash of
ONNX Runtime on one candidate fails that candidate, with the signal and the runtime's version, and
the stage goes on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import hardware, paths, stages
from ..backends.onnxruntime import ort_session
from ..bench.timing import time_engine
from ..config import Backend, CalibMethod, Params, Precision, QuantScope
from ..datasets import Split, adjusted, select, splits_for
from ..errors import ArtifactError
from ..io_spec import Feed, ModelIO, feed_resize
from ..isolate import ChildCrashed, IsolatedWorker
from ..metrics import chosen_metric, gate, judge, judged_index
from ..provenance import package_versions, sha256_array, sha256_file
from ..quantization import sensitivity
from ..quantization.embedding_tables import table_memory
from ..quantization.fp16 import to_fp16
from ..quantization.int8_format import FormatChoice, choose_int8_format
from ..quantization.quantizers import (
    check_calibration_data,
    make_quantizer,
    method_settings,
    qdq_summary,
    quantized_nodes,
    resolve_quantizer,
)
from .export import degenerate
from .validate import BATCH as VALIDATE_BATCH
from .validate import engine_outputs

logger = logging.getLogger(__name__)



class OnnxModel:
    """An ONNX file run by ONNX Runtime on this CPU, with what the timing harness and validate call."""

    max_batch = VALIDATE_BATCH

    def __init__(self, path: Path, threads: int) -> None:
        self._sess = ort_session(path, threads)

    def infer(self, x: Feed) -> list[np.ndarray]:
        return self._sess.run(None, x)


# run in the judging child process ----------------------------------------------------------------
def _child_state(val_x: Feed, threads: int) -> dict[str, Any]:
    return {"x": val_x, "threads": threads}


def _child_outputs(state: dict[str, Any], path: str) -> list[np.ndarray]:
    return engine_outputs(OnnxModel(Path(path), state["threads"]), state["x"])


def _child_speed(state: dict[str, Any], path: str, x: Feed, batches: list[int], timing: dict[str, Any]
                 ) -> dict[str, Any]:
    """The benchmark's timing harness (`time_engine`, the benchmark's warm-up, repeats, duration and spread rules)
    at each of the benchmark's batch sizes, on the same inputs the benchmark takes (the validation split)."""
    model = OnnxModel(Path(path), state["threads"])
    rows = []
    for b in batches:
        t = time_engine(model, feed_resize(x, b), **timing)
        rows.append({"batch": b, "samples_per_s": round(t.throughput, 1), "p50_ms": round(t.p50_ms, 4),
                     "valid": t.valid, "timing_reason": t.reason})
    return speed_summary(rows)


def speed_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-batch timings in one figure: the geometric mean of samples/s over the batch sizes (each batch size
    counts alike), with the largest batch's row as the headline row."""
    rates = [r["samples_per_s"] for r in rows if r["samples_per_s"]]
    geomean = float(np.exp(np.mean(np.log(rates)))) if len(rates) == len(rows) and rates else None
    last = rows[-1]
    return {**last, "valid": all(r["valid"] for r in rows),
            "timing_reason": "; ".join(f"batch {r['batch']}: {r['timing_reason']}" for r in rows if not r["valid"])
            or "valid", "geomean_samples_per_s": None if geomean is None else round(geomean, 1), "per_batch": rows}


class Judge:
    """Judges model files on the validation split against the FP32 ONNX outputs with 04_validate's
    gate, and times them, each in a child process that a native crash cannot take the stage down with."""

    def __init__(self, fp32: Path, val: Split, io: ModelIO, params: Params) -> None:
        self.val, self.io, self.params = val, io, params
        ort = package_versions().get("onnxruntime", "unknown")
        self.worker = IsolatedWorker(_child_state, val.x, params.threads, what="ONNX Runtime (CPU) candidate",
                                     versions={"onnxruntime": ort})
        try:
            self.ref = self.worker.call(_child_outputs, str(fp32))  # a crash on the FP32 model fails the stage
            judged_ref = self.ref[judged_index(params, io.outputs)]
            self.metric = chosen_metric(params, judged_ref, val.y is not None)
        except BaseException:
            self.worker.close()
            raise
        self.degenerate = degenerate(judged_ref)  # then nothing can pass: no sensitivity or fallback is spent

    def __call__(self, path: Path) -> dict[str, Any]:
        try:
            out = self.worker.call(_child_outputs, str(path))
        except ChildCrashed as e:
            logger.warning(f"{path.name}: {e}")
            return {"passed": False, "crashed": True, "unusable": True,
                    "reason": f"crashed while judging {path.name}: {e}", "accuracy_cost_pts": 100.0}
        except Exception as e:  # e.g. ONNX Runtime refusing an op of this candidate: it fails, the others go on
            logger.warning(f"{path.name}: {type(e).__name__}: {e}")
            return {"passed": False, "unusable": True, "accuracy_cost_pts": 100.0,
                    "reason": f"{path.name} could not be run: {type(e).__name__}: {e}"}
        return judge(self.ref, out, self.val.y, self.params, self.io.outputs)

    def speed(self, path: Path, x: Feed) -> dict[str, Any]:
        """Throughput on this CPU as the benchmark times it: its harness and settings, at its batch sizes."""
        p = self.params
        timing = {"warmup": p.warmup, "min_repeats": p.min_repeats, "min_time_s": p.min_time_s, "max_cov": p.max_cov}
        try:
            return self.worker.call(_child_speed, str(path), x, sorted(p.batch_sizes), timing)
        except Exception as e:  # ChildCrashed included
            return {"batch": max(p.batch_sizes), "samples_per_s": None, "valid": False, "geomean_samples_per_s": None,
                    "timing_reason": f"failed: {type(e).__name__}: {e}"}

    def close(self) -> None:
        self.worker.close()




def io_of(exported: dict[str, Any]) -> ModelIO:
    return ModelIO.model_validate(exported["io"])


def run(params: Params) -> dict[str, Any]:
    exported = stages.require(params, "01_export")
    run_dir = params.run_path
    src = paths.stage_dir(run_dir, "01_export") / exported["onnx"]
    out_dir = paths.stage_dir(run_dir, "02_calibrate")
    io = io_of(exported)
    splits = splits_for(params, io, exported["dataset"])
    calib = select(splits["calib"], params.calib_samples, params.seed)
    check_calibration_data(calib, io)
    val = select(splits["val"], params.val_samples, params.seed) if params.val_samples else splits["val"]
    judged = Judge(src, val, io, params)
    try:
        result: dict[str, Any] = {
            "source_onnx_sha256": exported["onnx_sha256"],
            "reference": "FP32 ONNX model on ONNX Runtime (CPU)",
            "val_samples": len(val),
            "adjusted": adjusted("calib_samples", params.calib_samples, len(calib), "calibration")
            + adjusted("val_samples", params.val_samples, len(val), "validation"),
            "metric": judged.metric.value,
            "gate": gate(params, judged.metric),
            "reference_degenerate": judged.degenerate,
        }
        if Precision.int8 in params.precisions and params.backend is Backend.torch:
            result.update(int8_onnx=None, statement="no ONNX INT8 model: backend=torch builds INT8 with torchao from "
                                                    "the model's weights (03_build), and no engine reads one")
        elif Precision.int8 in params.precisions:
            result.update(int8_model(params, src, out_dir, calib, judged, val.x))
            logger.info(result["statement"])
        else:
            result.update(int8_onnx=None, statement="no INT8 model: int8 is not in precisions")
        # an artifact no requested engine uses is not built: backend=torch builds FP16 from the model's weights,
        # and only ONNX Runtime CUDA engines (onnx_gpu) read an FP16 ONNX model beside it
        if Precision.fp16 in params.precisions and (params.backend is not Backend.torch or params.onnx_gpu):
            fp16 = to_fp16(src, out_dir / "model.fp16.onnx")
            result["fp16"] = {**fp16, **sensitivity.summary(judged(out_dir / fp16["fp16_onnx"]))}
        else:
            result["fp16"] = None
            result["fp16_statement"] = (
                "No FP16 ONNX model: backend=torch builds FP16 from the model's weights, and no ONNX Runtime CUDA "
                "engine (onnx_gpu) reads one." if Precision.fp16 in params.precisions else
                "No FP16 model: fp16 is not in `precisions`.")
    finally:
        judged.close()
    stages.write_result(run_dir, "02_calibrate", result, params)
    return result


def cpu_engines(params: Params) -> bool:
    """Whether the INT8 model is built into engines on this machine's CPU (ONNX Runtime), not the GPU's."""
    return params.backend is Backend.onnxruntime or (params.backend is Backend.auto and not hardware.has_cuda())


def int8_format(params: Params) -> FormatChoice:
    return choose_int8_format(params.int8_format, hardware.cpu_info()["isa_level"], resolve_quantizer(params.quantizer),
                              gpu_engines=not cpu_engines(params))


def scopes_to_try(params: Params) -> list[QuantScope]:
    """`auto`: every op first, then MatMul/Gemm only, then dynamic INT8 where the engines run on ONNX
    Runtime's CPU (a dynamic model is not Q/DQ: TensorRT cannot build it)."""
    if params.quant_scope is not QuantScope.auto:
        return [params.quant_scope]
    dynamic = cpu_engines(params) and resolve_quantizer(params.quantizer) == "onnxruntime"  # ModelOpt: Q/DQ only
    return [QuantScope.all, QuantScope.matmul, *([QuantScope.dynamic] if dynamic else [])]


def int8_model(params: Params, src: Path, out_dir: Path, calib: Split, judged: Judge, timing_x: Feed) -> dict[str, Any]:
    """Calibrate, quantize, rank, fall back to mixed precision and narrower scopes if needed, time; the
    INT8 part of the result."""
    cache_dir = Path(params.calib_cache_dir).resolve() if params.calib_cache_dir else out_dir / "cache"
    work = out_dir / ".work"  # scratch models; removed at the end
    scopes = scopes_to_try(params)
    fmt = int8_format(params)
    logger.info(f"INT8 format {fmt.format.value}: {fmt.reason}")
    quantizer = make_quantizer(params.quantizer, src, work, calib.x, params.per_channel, cache_dir, fmt, scopes[0],
                               tables=params.embedding_int8)
    try:
        method = params.calib_method
        settings = method_settings(method, params.calib_percentile, fmt.symmetric_activations)
        needs_ranges = any(s is not QuantScope.dynamic for s in scopes)
        ranges, cache = quantizer.ranges(method, settings) if needs_ranges else \
            (None, {"status": "unused", "reason": "dynamic INT8 calibrates at run time"})
        logger.info(f"calibration ranges ({method.value}): {cache['status']}")
        attempts = []
        for scope in scopes:  # every scope quantized in full and judged first: that is cheap
            attempts.append(full_scope(quantizer.with_scope(scope), work, method, settings, ranges, judged,
                                       out_dir / "rejected"))
            if judged.degenerate:
                break
        usable = [a for a in attempts if not a["failed"]]
        if not usable:  # every scope's model failed to be made, checked or loaded: nothing to validate
            raise ArtifactError("no INT8 model could be made: " + "; ".join(a["row"]["reason"] for a in attempts)
                                + "; set quant_scope to another scope, or leave int8 out of precisions")
        deadline = time.monotonic() + params.sensitivity_budget_s  # the budget of sensitivity and mixed precision
        if not any(a["row"]["passed"] for a in usable) and params.mixed_precision and not judged.degenerate:
            for a in usable:  # then mixed precision, scope by scope, within the time budget
                recover(params, a, work, method, settings, ranges, judged, deadline)
                if a["row"]["passed"]:
                    break
        passing = [a for a in attempts if a["row"]["passed"]]
        for a in passing:
            a["speed"] = judged.speed(a["path"], timing_x)
        # the fastest scope that passes the gate on this CPU; if none does, the most accurate (validation refuses it)
        chosen = max(passing, key=lambda a: a["speed"]["geomean_samples_per_s"] or 0.0) if passing else \
            min(usable, key=lambda a: a["row"].get("accuracy_cost_pts", 100.0))
        if params.sensitivity and not chosen["ranking"] and not judged.degenerate:
            rank(params, chosen, work, method, settings, ranges, judged, deadline)
        final = out_dir / "model.int8.onnx"
        if chosen["path"] != final:
            chosen["path"].replace(final)

        speed = {"fp32": judged.speed(src, timing_x), "int8": chosen.get("speed") or judged.speed(final, timing_x)}
        methods = compare_methods(params, quantizer.with_scope(chosen["scope"]), judged, timing_x, work,
                                  {method: (chosen["all_nodes_row"], final, cache)} if not chosen["kept"] else {})
        qdq = qdq_summary(final, quantizer.model)  # the prepared source model goes with the work folder
    finally:
        quantizer.close()
    row, nodes, kept = chosen["row"], chosen["nodes"], chosen["kept"]
    return {
        "int8_onnx": final.name,
        "int8_onnx_sha256": sha256_file(final),
        "quant_scope": chosen["scope"].value,
        "quant_scope_requested": params.quant_scope.value,
        "quant_attempts": [{"scope": a["scope"].value, "quantized_nodes": len(a["nodes"]), "groups": a["groups"],
                            "failed": a["failed"],
                            "kept_fp32": len(a["kept"]), "result": sensitivity.summary(a["row"]),
                            "int8_cpu": a.get("speed")} for a in attempts],
        "quant_choice": ("the only scope asked for" if len(attempts) == 1 else
                         f"the fastest of {len(passing)} scope(s) inside the gate on this CPU (geometric mean of samples/s over "
                         f"the benchmark's batch sizes {sorted(params.batch_sizes)}, with the benchmark's timing harness)"
                         if passing else "no scope passed the gate: the most accurate is kept, and validation refuses it"),
        "quantizer": quantizer.name,
        "quantizer_version": quantizer.version,
        "quantizer_requested": params.quantizer.value,
        "graph_preparation": quantizer.prep,
        "format": fmt.describe(dynamic=chosen["scope"] is QuantScope.dynamic),
        **fmt.as_dict(),
        "calib_method": method.value,
        "calib_settings": settings,
        "per_channel": params.per_channel,
        "calib_samples": len(calib),
        "calib_labels": None if calib.y is None else np.bincount(calib.y).tolist(),
        "calib_data_sha256": sha256_array(*calib.x.values()),
        # paths inside the run are kept relative: the run folder is renamed when it is published
        "calib_cache": {k: v.replace(f"{out_dir.parent}/", "") for k, v in {**cache, "dir": str(cache_dir)}.items()},
        "int8_all_nodes": sensitivity.summary(chosen["all_nodes_row"]),
        "int8": sensitivity.summary(row),
        "int8_passed": bool(row["passed"]),
        "kept_fp32": kept,
        "statement": sensitivity.statement(len(kept), len(nodes), row, chosen["scope"].value)
                     + ("" if row["passed"] else " — outside the gate: "
                        + "; ".join(f"{a['scope'].value}: {a['row']['reason']}" for a in attempts)),
        "sensitivity": chosen["ranking"],
        "sensitivity_groups": chosen["groups"],
        "mixed_precision": chosen["mixed"],
        "speed_cpu": speed,
        "embedding_tables": tables_summary(src, quantizer.tables),
        "methods": methods,
        "qdq": qdq,
    }


def tables_summary(src: Path, tables: dict[str, Any] | None) -> dict[str, Any]:
    """The FP32 model's embedding tables and their memory before and after the INT8 model's per-row quantization."""
    before = table_memory(src)
    if not before["tables"]:
        return {**before, "int8": None}
    if not tables or not tables["tables"]:
        return {**before, "int8": None, "int8_bytes": before["fp32_bytes"],
                "reason": "tables kept in FP32 (embedding_int8 is off, or the quantizer is ModelOpt)"}
    return {**before, "int8": tables["format"], "int8_bytes": tables["int8_bytes"], "saved_pct": tables["saved_pct"],
            "max_abs_err": tables["max_abs_err"], "per_table_int8": [
                {k: t[k] for k in ("table", "int8_bytes", "max_abs_err")} for t in tables["per_table"]]}


def full_scope(quantizer, work: Path, method: CalibMethod, settings: dict[str, Any], ranges,
               judged: Judge, rejected: Path) -> dict[str, Any]:
    """Every node of the quantizer's scope quantized, checked and judged. A scope whose model the quantizer cannot
    write, the ONNX checker refuses or ONNX Runtime cannot load is a failed attempt (its reason recorded, its model
    kept in `rejected/` for inspection), and the next scope is tried."""
    scope = quantizer.scope
    path = work / f"int8-{scope.value}.onnx"
    attempt = {"scope": scope, "quantizer": quantizer, "path": path, "nodes": [], "kept": [], "ranking": [],
               "groups": 0, "mixed": None, "failed": False}
    try:
        quantizer.quantize(path, method, settings, ranges)
        nodes = quantized_nodes(path, quantizer.model)  # loads it through the ONNX checker
    except Exception as e:  # the quantizer's own errors are of many types; ArtifactError from the checker
        row = {"passed": False, "unusable": True, "accuracy_cost_pts": 100.0,
               "reason": f"INT8 {scope.value} failed: {type(e).__name__}: {first_line(e, work)}"
                         + kept_as(path, rejected)}
        logger.warning(row["reason"])
        return {**attempt, "row": row, "all_nodes_row": row, "failed": True}
    row = judged(path)
    if row.get("unusable"):
        row["reason"] += kept_as(path, rejected)
    logger.info(f"INT8 {scope.value} ({len(nodes)} quantized nodes): {row['reason']}")
    return {**attempt, "row": row, "all_nodes_row": row, "nodes": nodes, "failed": bool(row.get("unusable"))}


def first_line(e: BaseException, work: Path) -> str:
    """An exception's first line, without the scratch folder's path (it is removed when the stage ends)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text.replace(f"{work}/", "")[:400]


def kept_as(path: Path, rejected: Path) -> str:
    """Move a failed candidate out of the scratch folder into `rejected/`; the words that say where it is,
    relative to the run folder (which moves to failed/ or is published)."""
    if not path.is_file():
        return ""
    rejected.mkdir(exist_ok=True)
    path.replace(rejected / path.name)
    return f" (the model is kept as {rejected.parent.name}/{rejected.name}/{path.name} in the run folder)"


def rank(params: Params, attempt: dict[str, Any], work: Path, method: CalibMethod, settings: dict[str, Any], ranges,
         judged: Judge, deadline: float) -> None:
    """Sensitivity of the attempt's nodes, grouped, within the time budget."""
    if len(attempt["nodes"]) < 2:
        return
    quantizer = attempt["quantizer"]
    grouped = sensitivity.group_nodes(attempt["nodes"], params.sensitivity_groups)
    attempt["groups"] = len(grouped)
    attempt["ranking"] = sensitivity.rank_groups(
        grouped, lambda names: quantizer.quantize(work / "one-group.onnx", method, settings, ranges,
                                                  nodes_to_quantize=names), judged, deadline, progress=logger.info)


def recover(params: Params, attempt: dict[str, Any], work: Path, method: CalibMethod, settings: dict[str, Any], ranges,
            judged: Judge, deadline: float) -> None:
    """Mixed precision for a scope that fails the gate: its most sensitive groups kept in FP32."""
    rank(params, attempt, work, method, settings, ranges, judged, deadline)
    if not attempt["ranking"]:
        return
    quantizer, scope = attempt["quantizer"], attempt["scope"]
    mixed_path = work / f"int8-{scope.value}-mixed.onnx"
    mixed = sensitivity.mixed_precision(
        attempt["ranking"], lambda kept: quantizer.quantize(mixed_path, method, settings, ranges, nodes_to_exclude=kept),
        judged, params.mixed_precision_max_nodes, deadline, progress=logger.info)
    if mixed["passed"]:
        attempt.update(path=mixed_path, row=mixed["steps"][-1], kept=mixed["kept_fp32"])
    attempt["mixed"] = {k: v for k, v in mixed.items() if k != "model"}


def compare_methods(params: Params, quantizer, judged: Judge, timing_x: Feed, work: Path,
                    done: dict[CalibMethod, tuple[dict[str, Any], Path, dict[str, str]]]) -> list[dict]:
    """Accuracy and INT8 CPU speed of every method in `calib_compare` (every node of the scope quantized)."""
    rows = []
    if quantizer.scope is QuantScope.dynamic:
        return rows  # dynamic INT8 has no calibration method to compare
    for m in params.calib_compare:
        if m in done:
            row, path, cache = done[m]
        else:
            settings = method_settings(m, params.calib_percentile, quantizer.fmt.symmetric_activations)
            ranges, cache = quantizer.ranges(m, settings)
            path = quantizer.quantize(work / f"compare-{m.value}.onnx", m, settings, ranges)
            row = judged(path)
        speed = judged.speed(path, timing_x)
        rows.append({"method": m.value, **({"percentile": params.calib_percentile} if m is CalibMethod.percentile
                                           else {}), **sensitivity.summary(row), "int8_cpu": speed,
                     "cache": cache["status"]})
        logger.info(f"method {m.value}: {rows[-1]['reason']}, {speed['samples_per_s'] or 0:,.0f} samples/s")
    return rows
