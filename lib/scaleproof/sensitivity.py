"""Which INT8 nodes cost accuracy, and the fewest to keep in FP32 so the model passes the gate.

Sensitivity: each quantized node is quantized alone (every other node stays FP32) and the model is
judged on the validation split like any engine; nodes are ranked by that accuracy cost (top-1 drop
with labels, disagreement with FP32 without), ties broken by output error. Mixed precision then
excludes the most sensitive nodes, one more at a time, until the fully quantized rest passes the gate
or a limit is reached. Both work through two callables so any quantizer and gate can drive them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Evaluate = Callable[[Path], dict[str, Any]]  # a model file -> validate.judge's row (passed, top1..., parity)


def accuracy_cost(row: dict[str, Any]) -> float:
    """Points of accuracy lost against FP32: top-1 drop with labels, else top-1 disagreement."""
    if "top1_delta_pts" in row:
        return max(0.0, -row["top1_delta_pts"])
    return 100.0 * (1.0 - row["top1_agreement"])


def summary(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("passed", "reason", "top1", "top1_delta_pts", "top1_agreement", "max_rel_err", "mean_abs_err")
    return {k: row[k] for k in keep if k in row} | {"accuracy_cost_pts": round(accuracy_cost(row), 4)}


def rank_nodes(nodes: list[dict[str, str]], quantize_only: Callable[[str], Path], evaluate: Evaluate,
               progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """Each node quantized alone, judged, and ranked most costly first (rank 1)."""
    rows = []
    for i, node in enumerate(nodes, 1):
        row = {**node, **summary(evaluate(quantize_only(node["node"])))}
        rows.append(row)
        progress(f"sensitivity {i}/{len(nodes)}: {node['node']} costs {row['accuracy_cost_pts']:.2f} pt")
    rows.sort(key=lambda r: (r["accuracy_cost_pts"], r.get("max_rel_err", 0.0)), reverse=True)
    return [{"rank": i, **r} for i, r in enumerate(rows, 1)]


def mixed_precision(ranking: list[dict[str, Any]], quantize_excluding: Callable[[tuple[str, ...]], Path],
                    evaluate: Evaluate, max_nodes: int,
                    progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Exclude the top-k sensitive nodes for k = 1, 2, ... up to `max_nodes`, stopping at the first pass."""
    steps = []
    for k in range(1, min(max_nodes, len(ranking)) + 1):
        kept = tuple(r["node"] for r in ranking[:k])
        path = quantize_excluding(kept)
        row = summary(evaluate(path))
        steps.append({"kept_fp32": list(kept), **row})
        progress(f"mixed precision, {k} node(s) kept in FP32: {row['reason']}")
        if row["passed"]:
            return {"passed": True, "kept_fp32": list(kept), "model": path, "steps": steps}
    return {"passed": False, "kept_fp32": [], "model": None, "steps": steps,
            "reason": f"still outside the gate with the {len(steps)} most sensitive nodes in FP32 "
                      f"(mixed_precision_max_nodes={max_nodes})"}


def statement(kept: int, int8_nodes: int, row: dict[str, Any]) -> str:
    """The sentence the report prints: 'INT8 with 3 of 54 layers kept in FP32: top-1 -0.40 pt'."""
    if "top1_delta_pts" in row:
        metric = f"top-1 {row['top1_delta_pts']:+.2f} pt"
    else:
        metric = f"top-1 agreement with FP32 {100 * row['top1_agreement']:.2f}%"
    if kept == 0:
        return f"INT8 with all {int8_nodes} quantized nodes in INT8: {metric}"
    return f"INT8 with {kept} of {int8_nodes} quantized nodes kept in FP32: {metric}"
