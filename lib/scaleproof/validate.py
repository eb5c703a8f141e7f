"""Stage 04: every engine against the FP32 PyTorch reference; the gate decides which may be priced."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import build, stages
from .config import Params
from .datasets import Split, select, splits_for
from .export import parity, torch_outputs
from .zoo import load_model

BATCH = 64


def engine_outputs(engine, x: np.ndarray) -> np.ndarray:
    step = min(BATCH, engine.max_batch)
    return np.concatenate([engine.infer(np.ascontiguousarray(x[i:i + step])) for i in range(0, len(x), step)])


def judge(ref: np.ndarray, out: np.ndarray, y: np.ndarray | None, params: Params) -> dict[str, Any]:
    """Accuracy and agreement of `out` against the reference `ref`, and the gate's verdict with its reason."""
    row: dict[str, Any] = parity(ref, out)
    row["nonfinite_outputs"] = int((~np.isfinite(out)).sum())
    reasons = []
    if row["nonfinite_outputs"]:
        reasons.append(f"{row['nonfinite_outputs']} NaN/Inf outputs")
    if y is not None:
        row["top1"] = float((out.argmax(1) == y).mean())
        row["ref_top1"] = float((ref.argmax(1) == y).mean())
        row["top1_delta_pts"] = round(100 * (row["top1"] - row["ref_top1"]), 4)
        if -row["top1_delta_pts"] > params.max_top1_drop:
            reasons.append(f"top-1 drops {-row['top1_delta_pts']:.2f} pt > max_top1_drop {params.max_top1_drop}")
    elif row["top1_agreement"] < params.min_agreement:  # no labels: agreement with FP32 is the accuracy proxy
        reasons.append(f"top-1 agreement {row['top1_agreement']:.4f} < min_agreement {params.min_agreement}")
    row["passed"] = not reasons
    row["reason"] = "; ".join(reasons) or "within gate"
    return row


def run(params: Params) -> dict[str, Any]:
    exported = stages.require(params, "01_export")
    built = stages.require(params, "03_build")
    run_dir = params.run_path
    val: Split = splits_for(exported["dataset"], tuple(exported["input_shape"]), params.seed)["val"]
    if params.val_samples:
        val = select(val, params.val_samples, params.seed)
    bundle = load_model(params.model, params.input_shape)
    ref = torch_outputs(bundle, val.x)
    rows = []
    for entry in built["engines"]:
        engine = build.load_engine(run_dir, entry, params.threads)
        try:
            out = engine_outputs(engine, val.x)
        finally:
            engine.close()
        rows.append({"engine": entry["name"], "backend": entry["backend"], "precision": entry["precision"],
                     **judge(ref, out, val.y, params)})
        print(f"[scaleproof] {entry['name']}: {rows[-1]['reason']}")
    result = {
        "reference": f"PyTorch FP32 eager, {params.model} ({bundle.weights})",
        "samples": len(val),
        "metric": "top-1 accuracy vs labels" if val.y is not None
                  else "top-1 agreement with FP32 (the data has no labels: random weights or synthetic inputs)",
        "gate": {"max_top1_drop_pts": params.max_top1_drop} if val.y is not None
                else {"min_agreement": params.min_agreement},
        "engines": rows,
        "passed": [r["engine"] for r in rows if r["passed"]],
        "failed": [{"engine": r["engine"], "reason": r["reason"]} for r in rows if not r["passed"]],
    }
    stages.write_result(run_dir, "04_validate", result)
    return result


