"""Sensitivity stays affordable on models with hundreds of quantizable nodes: nodes grouped by layer (or in
contiguous runs), judged within a time budget; mixed precision keeps whole groups in FP32."""

import time
from pathlib import Path

from scaleproof.quantization import sensitivity


def nodes(names, op="MatMul"):
    return [{"node": n, "op_type": op} for n in names]


def test_small_models_judge_every_node_alone():
    ns = nodes(["a", "b", "c"])
    assert sensitivity.group_nodes(ns, 16) == [[n] for n in ns]
    assert sensitivity.group_nodes(ns, 0) == [[n] for n in ns]


def test_nodes_are_grouped_by_layer_index_then_merged_to_the_limit():
    names = [f"/encoder/layer.{i}/attention/{k}/MatMul" for i in range(12) for k in ("q", "k", "v", "out")]
    groups = sensitivity.group_nodes(nodes(["/embeddings/MatMul", *names, "/pooler/Gemm"]), 6)
    assert len(groups) <= 6 and sum(len(g) for g in groups) == 50
    # a layer is never split across groups
    for i in range(12):
        owners = {j for j, g in enumerate(groups) for n in g if f"layer.{i}/" in n["node"]}
        assert len(owners) == 1, i


def test_names_without_layers_fall_back_to_contiguous_runs_in_graph_order():
    ns = nodes([f"node_MatMul_{i}" for i in range(100)])
    groups = sensitivity.group_nodes(ns, 8)
    assert len(groups) == 8 and [n for g in groups for n in g] == ns  # order kept, nothing lost
    assert max(len(g) for g in groups) - min(len(g) for g in groups) <= 13


def test_the_time_budget_leaves_groups_unjudged_and_says_so():
    calls = []

    def evaluate(path: Path):
        calls.append(path)
        time.sleep(0.05)
        return {"passed": False, "reason": "x", "accuracy_cost_pts": float(len(calls)), "max_rel_err": 0.0}

    groups = sensitivity.group_nodes(nodes([f"n{i}" for i in range(10)]), 0)
    ranking = sensitivity.rank_groups(groups, lambda names: Path("/dev/null"), evaluate, time.monotonic() + 0.12)
    judged = [r for r in ranking if r["judged"]]
    assert 2 <= len(judged) < 10 and len(ranking) == 10
    assert all("sensitivity_budget_s ran out" in r["reason"] for r in ranking if not r["judged"])
    assert [r["accuracy_cost_pts"] for r in judged] == sorted((r["accuracy_cost_pts"] for r in judged), reverse=True)
    mixed = sensitivity.mixed_precision(ranking, lambda kept: Path("/dev/null"), evaluate, 8, time.monotonic() - 1)
    assert not mixed["passed"] and "sensitivity_budget_s ran out" in mixed["reason"] and mixed["steps"] == []


def test_uneven_layers_never_make_more_groups_than_asked():
    sizes = [2, 3, 2, 3, 2, 3]
    names = [f"/layers.{i}/op{k}" for i, n in enumerate(sizes) for k in range(n)]
    groups = sensitivity.group_nodes(nodes(names), 4)
    assert len(groups) <= 4 and sum(len(g) for g in groups) == sum(sizes)
    assert all(len({n["node"].split("/")[1] for n in g}) >= 1 for g in groups)
