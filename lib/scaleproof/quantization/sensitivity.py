"""Which INT8 nodes cost accuracy, and the fewest to keep in FP32 so the model passes the gate.

Sensitivity: each group of quantized nodes is quantized alone (every other node stays FP32) and the
model is judged on the validation split like any engine; groups are ranked by that accuracy cost
(`accuracy_cost_pts` of the gate's metric), ties broken by output error. A small model has one node
per group; a model with hundreds of quantizable nodes (a transformer) is judged by layer, or by
contiguous runs of nodes in graph order where names carry no layer index, so the pass stays
affordable, and a time budget bounds it: groups not reached are reported as not judged. Mixed
precision then excludes the most sensitive groups, one more at a time, until the rest passes the
gate or a limit is reached. Both work through callables so any quantizer and gate can drive them.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..metrics import describe

Evaluate = Callable[[Path], dict[str, Any]]  # a model file -> metrics.judge's row (passed, accuracy_cost_pts…)
LAYER_RE = re.compile(r"(?:^|[./_])(?:layers?|blocks?|h|stages?|encoder_layer)[./_](\d+)(?=[./_]|$)")
SUMMARY_KEYS = ("passed", "reason", "metric", "top1", "top1_delta_pts", "top1_agreement", "cosine_mean",
                "cosine_min", "score", "ref_score", "auc", "ref_auc", "auc_delta_pts", "logloss", "ref_logloss", "output_err", "max_rel_err", "accuracy_cost_pts", "crashed")


def summary(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in SUMMARY_KEYS if k in row}


def group_nodes(nodes: list[dict[str, str]], max_groups: int) -> list[list[dict[str, str]]]:
    """Nodes in at most `max_groups` groups (0: one node each): by layer index in the node names where
    there is one, merged in graph order down to `max_groups`; else contiguous runs in graph order."""
    if max_groups == 0 or len(nodes) <= max_groups:
        return [[n] for n in nodes]
    runs: list[list[dict[str, str]]] = []
    last_key = object()
    for n in nodes:  # consecutive nodes of one layer form one run
        m = LAYER_RE.search(n["node"])
        key = m.group(0) if m else None
        if runs and key == last_key and key is not None:
            runs[-1].append(n)
        else:
            runs.append([n])
        last_key = key
    if len(runs) <= max_groups:
        return runs
    # merge neighbouring runs into max_groups groups of similar size: cut at the run boundaries nearest
    # to equal shares of the nodes (a layer is never split)
    ends = list(itertools.accumulate(len(r) for r in runs))[:-1]
    cuts = sorted({min(range(len(ends)), key=lambda i: abs(ends[i] - j * len(nodes) / max_groups))
                   for j in range(1, max_groups)})
    groups, start = [], 0
    for c in [*cuts, len(runs) - 1]:
        groups.append([n for r in runs[start:c + 1] for n in r])
        start = c + 1
    return [g for g in groups if g]


def group_label(group: list[dict[str, str]]) -> str:
    if len(group) == 1:
        return group[0]["node"]
    return f"{group[0]['node']} … {group[-1]['node']} ({len(group)} nodes)"


def rank_groups(groups: list[list[dict[str, str]]], quantize_only: Callable[[list[str]], Path], evaluate: Evaluate,
                deadline: float, progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """Each group quantized alone, judged, and ranked most costly first (rank 1); groups the time budget
    did not reach come last, marked not judged."""
    rows, skipped = [], []
    for i, group in enumerate(groups, 1):
        names = [n["node"] for n in group]
        base = {"group": group_label(group), "nodes": names, "op_types": sorted({n["op_type"] for n in group})}
        if time.monotonic() > deadline:
            skipped.append({**base, "judged": False, "reason": "not judged: sensitivity_budget_s ran out"})
            continue
        row = {**base, "judged": True, **summary(evaluate(quantize_only(names)))}
        rows.append(row)
        progress(f"sensitivity {i}/{len(groups)}: {base['group']} costs {row['accuracy_cost_pts']:.2f} pt")
    rows.sort(key=lambda r: (r["accuracy_cost_pts"], r.get("max_rel_err", 0.0)), reverse=True)
    return [{"rank": i, **r} for i, r in enumerate(rows + skipped, 1)]


def mixed_precision(ranking: list[dict[str, Any]], quantize_excluding: Callable[[tuple[str, ...]], Path],
                    evaluate: Evaluate, max_groups: int, deadline: float,
                    progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Exclude the top-k sensitive groups for k = 1, 2, … up to `max_groups`, stopping at the first pass."""
    steps = []
    judged = [r for r in ranking if r.get("judged", True)]
    for k in range(1, min(max_groups, len(judged)) + 1):
        if time.monotonic() > deadline:
            break
        kept = tuple(n for r in judged[:k] for n in r["nodes"])
        path = quantize_excluding(kept)
        row = summary(evaluate(path))
        steps.append({"groups_kept_fp32": k, "kept_fp32": list(kept), **row})
        progress(f"mixed precision, {k} group(s) ({len(kept)} nodes) kept in FP32: {row['reason']}")
        if row["passed"]:
            return {"passed": True, "kept_fp32": list(kept), "model": path, "steps": steps}
    limit = f"mixed_precision_max_nodes={max_groups}" if len(steps) == min(max_groups, len(judged)) and steps \
        else ("no group was judged within sensitivity_budget_s" if not judged else "sensitivity_budget_s ran out")
    return {"passed": False, "kept_fp32": [], "model": None, "steps": steps,
            "reason": f"still outside the gate with the {len(steps)} most sensitive group(s) in FP32 ({limit})"}


def statement(kept: int, int8_nodes: int, row: dict[str, Any], scope: str = "all") -> str:
    """The sentence the report prints: 'INT8 with 3 of 54 quantized nodes kept in FP32: top-1 -0.40 pt'."""
    what = {"all": "INT8", "matmul": "INT8 (MatMul/Gemm only)", "dynamic": "dynamic INT8 (MatMul/Gemm)"}.get(scope, "INT8")
    if kept == 0:
        return f"{what} with all {int8_nodes} quantized nodes in INT8: {describe(row)}"
    return f"{what} with {kept} of {int8_nodes} quantized nodes kept in FP32: {describe(row)}"
