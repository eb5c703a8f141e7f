"""Stage 02's presentation: the INT8 statement, calibration and mixed precision in words, the sensitivity ranking and the methods table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import BenchmarkResult, CalibrateResult


def int8_markdown(calibrated: CalibrateResult, benchmarked: BenchmarkResult | None = None) -> str:
    """What the INT8 model is: how many nodes stayed FP32, at what accuracy, and what that cost in speed. Where the
    benchmark ordered ONNX Runtime's FP32 and INT8 engines the other way, that is said, with why."""
    if not calibrated.int8_onnx:
        return ""
    text = (f"- **INT8 model:** {calibrated.statement} ({calibrated.quantizer} {calibrated.quantizer_version}, "
            f"{calibrated.calib_method} calibration on {calibrated.calib_samples} samples")
    speed = calibrated.speed_cpu
    fp32, int8 = (speed.fp32, speed.int8) if speed else (None, None)
    if fp32 and int8 and fp32.geomean_samples_per_s and int8.geomean_samples_per_s:
        batches = [b.batch for b in int8.per_batch or []]
        text += (f"; on this CPU at batches {batches} (geometric mean, the benchmark's harness): "
                 f"{int8.geomean_samples_per_s:,.0f} samples/s in INT8 against {fp32.geomean_samples_per_s:,.0f} in "
                 "FP32 (ONNX Runtime)")
        text += ordering_note(int8.geomean_samples_per_s > fp32.geomean_samples_per_s, batches, benchmarked)
    elif fp32 and int8 and fp32.samples_per_s and int8.samples_per_s:  # a result written before per-batch timings
        text += (f"; on this CPU at batch {int8.batch}: {int8.samples_per_s:,.0f} samples/s in INT8 "
                 f"against {fp32.samples_per_s:,.0f} in FP32 (ONNX Runtime)")
    return text + "). *Source: calibrate/calibrate.json*"


def ordering_note(int8_faster: bool, batches: list[int], benchmarked: BenchmarkResult | None) -> str:
    """Empty where the benchmark's timings of onnxruntime-int8 and onnxruntime-fp32 at the same batch sizes order
    them as the calibration stage did; else the benchmark's figures and why the two differ."""
    if benchmarked is None:
        return ""
    by_name = {e.engine: e for e in benchmarked.engines}
    pair = by_name.get("onnxruntime-int8"), by_name.get("onnxruntime-fp32")
    if None in pair:
        return ""
    rates = []
    for e in pair:
        got = {t.batch: t.throughput for t in e.timings if t.throughput}
        if not all(b in got for b in batches):
            return ""
        rates.append(float(np.exp(np.mean(np.log([got[b] for b in batches])))))
    if (rates[0] > rates[1]) == int8_faster:
        return ""
    return (f". **The benchmark ordered these two the other way:** onnxruntime-int8 {rates[0]:,.0f} against "
            f"onnxruntime-fp32 {rates[1]:,.0f} samples/s at the same batch sizes (benchmark/benchmark.json). The "
            "benchmark's figures are the ones priced: each engine in its own process after the others, with the "
            "LoadGen runs between; the calibration stage's timing is the earlier screening it chose the scope by, "
            "and on a CPU shared with other work, or where the two are within the timings' spread, the two "
            "orders can differ")


def adjusted_words(result: CalibrateResult) -> str:
    """Parameters the data could not honour, in bold: never silently changed."""
    return "".join(f" **{a.parameter} {a.asked:,} → {a.used:,} used: {a.why}.**" for a in result.adjusted)


def calibration_markdown(c: CalibrateResult) -> str:
    """What 02_calibrate made and from what: the INT8 statement, calibration data, quantizer, cache."""
    head = (f"**{c.statement}** (gate: {c.gate}, {c.val_samples} validation samples, "
            f"reference: {c.reference}).") + adjusted_words(c)
    if not c.int8_onnx:
        return head + (" The FP16 model is below." if c.fp16 else "")
    return head + (
        f"\n\nCalibrated with **{c.calib_method}** {c.calib_settings} on {c.calib_samples} samples "
        f"(data sha256 `{c.calib_data_sha256[:16]}…`), {c.format}, per-channel weights: {c.per_channel}; "
        f"quantizer **{c.quantizer} {c.quantizer_version}** (asked: {c.quantizer_requested}). "
        f"INT8 model `{c.int8_onnx}`: {c.qdq.int8_nodes} nodes in INT8, {c.qdq.quantize_nodes} "
        f"QuantizeLinear. Calibration cache: **{c.calib_cache.status}** — {c.calib_cache.reason}.")


def mixed_precision_markdown(c: CalibrateResult) -> str:
    mixed = c.mixed_precision
    if not c.int8_onnx:
        return "No INT8 model in this run."
    if mixed is None:
        if c.int8_passed:
            return "INT8 with every node of its scope quantized passed the gate: no mixed precision needed."
        return f"**INT8 is outside the gate and mixed precision did not run:** {c.statement}"
    steps = "\n".join(f"- {s.groups_kept_fp32} group(s), {len(s.kept_fp32)} node(s) kept in FP32 "
                       f"({', '.join(s.kept_fp32[:6])}{' …' if len(s.kept_fp32) > 6 else ''}): {s.reason}"
                       for s in mixed.steps)
    verdict = (f"kept in FP32: {', '.join(c.kept_fp32)}" if mixed.passed else f"**{mixed.reason}**")
    return f"Mixed precision, fewest nodes first; {verdict}.\n\n{steps}"


def sensitivity_table(calibrated: CalibrateResult) -> pd.DataFrame:
    cols = ["rank", "group", "op_types", "judged", "accuracy_cost_pts", "top1_delta_pts", "top1_agreement",
            "cosine_mean", "auc_delta_pts", "max_rel_err"]
    src = calibrated.sensitivity or []
    rows = [{k: getattr(r, k) for k in cols} for r in src]
    kept = set(calibrated.kept_fp32 or [])
    for r, s in zip(rows, src, strict=True):
        r["kept in FP32"] = bool(kept & set(s.nodes))
    return pd.DataFrame(rows).set_index("rank") if rows else pd.DataFrame(columns=cols)


def plot_sensitivity(calibrated: CalibrateResult, top: int = 25):
    """Accuracy cost and output error of quantizing each node (or group) alone, most costly first."""
    import matplotlib.pyplot as plt

    rows = [r for r in calibrated.sensitivity or [] if r.judged][:top]
    if not rows:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.3 * len(rows) + 1.5), sharey=True)
    names = [f"{r.group} ({', '.join(r.op_types)})"[:70] for r in rows][::-1]
    kept = set(calibrated.kept_fp32 or [])
    colors = ["C3" if kept & set(r.nodes) else "C0" for r in rows][::-1]
    ax1.barh(names, [r.accuracy_cost_pts for r in rows][::-1], color=colors)
    ax1.set_xlabel("accuracy cost when quantized alone (pt)")
    ax2.barh(names, [0.0 if r.max_rel_err is None else r.max_rel_err for r in rows][::-1], color=colors)
    ax2.set_xlabel("max relative output error vs FP32")
    fig.suptitle(f"INT8 sensitivity per node or group ({calibrated.calib_method}; red: kept in FP32)")
    fig.tight_layout()
    return fig


def methods_table(calibrated: CalibrateResult) -> pd.DataFrame:
    """Calibration methods compared: accuracy against FP32 and INT8 speed on this CPU."""
    if not calibrated.methods:
        return pd.DataFrame({"note": ["no methods compared (calib_compare is empty or int8 is not in precisions)"]})
    fp32 = calibrated.speed_cpu.fp32
    rows = [{"method": "FP32 (reference)",
             "top-1 Δ pt": 0.0 if calibrated.int8.top1_delta_pts is not None else None,
             "top-1 agreement": 1.0, "max rel err": 0.0, "gate": "—",
             f"samples/s (batch {fp32.batch})": fp32.samples_per_s, "cache": "—"}]
    for m in calibrated.methods:
        label = m.method + (f" ({m.percentile})" if m.percentile is not None else "")
        rows.append({"method": label, "top-1 Δ pt": m.top1_delta_pts, "top-1 agreement": m.top1_agreement,
                     "max rel err": round(float("nan") if m.max_rel_err is None else m.max_rel_err, 5),
                     "gate": "pass" if m.passed else m.reason,
                     f"samples/s (batch {fp32.batch})": m.int8_cpu.samples_per_s
                     if m.int8_cpu.valid else f"INVALID: {m.int8_cpu.timing_reason}",
                     "cache": m.cache})
    return pd.DataFrame(rows).set_index("method")


def tables_markdown(calibrated: CalibrateResult) -> str:
    """The embedding tables' memory before and after, in one sentence."""
    t = calibrated.embedding_tables
    if not t or not t.get("tables"):
        return "No embedding tables (float tables read only by Gather)."
    after = (f"{t['int8_bytes'] / 2**20:,.1f} MiB as {t['int8']} ({t['saved_pct']:.1f}% less; largest row error "
             f"{t['max_abs_err']:.3g})" if t.get("int8") else f"kept in FP32: {t.get('reason', '')}")
    return (f"{t['tables']} embedding table(s), {t['rows']:,} rows: {t['fp32_bytes'] / 2**20:,.1f} MiB in FP32, "
            f"{after}.")
