"""AUC and log loss for a one-wide sigmoid output with 0/1 labels, and the AUC-drop gate."""

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from scaleproof.config import Metric, Params
from scaleproof.errors import ParamsError
from scaleproof.metrics import chosen_metric, describe, gate, judge


@pytest.fixture
def clicks():
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 1.5, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    ref = (1 / (1 + np.exp(-(logit + rng.normal(0, 1.0, 4000))))).astype(np.float32)[:, None]  # (N, 1)
    return ref, y, rng


def test_auto_takes_auc_for_a_one_wide_output_with_labels(clicks):
    ref, y, _ = clicks
    assert chosen_metric(Params(), ref, has_labels=True) is Metric.auc
    assert chosen_metric(Params(), ref[:, 0], has_labels=True) is Metric.auc
    assert chosen_metric(Params(), ref, has_labels=False) is Metric.cosine  # no labels: no AUC
    with pytest.raises(ParamsError, match=r"metric=auc judges a one-wide output .* shape \(4000, 2\)"):
        chosen_metric(Params(metric="auc"), np.hstack([ref, ref]), has_labels=True)


def test_a_small_error_passes_and_reports_auc_and_log_loss(clicks):
    ref, y, rng = clicks
    out = (ref + rng.normal(0, 1e-3, ref.shape)).clip(0, 1).astype(np.float32)
    row = judge([ref], [out], y, Params(), ["ctr"])
    assert row["metric"] == "auc" and row["passed"], row["reason"]
    assert row["ref_auc"] == pytest.approx(roc_auc_score(y, ref[:, 0]))
    assert row["logloss"] == pytest.approx(log_loss(y, out[:, 0].clip(1e-7, 1 - 1e-7)))
    assert abs(row["auc_delta_pts"]) < 0.1 and row["accuracy_cost_pts"] == max(0.0, -row["auc_delta_pts"])
    assert describe(row).startswith(f"AUC {row['auc']:.4f} (") and "log loss" in describe(row)
    assert gate(Params(max_auc_drop=0.3), Metric.auc) == {"max_output_err": 0.25, "max_auc_drop_pts": 0.3}


def test_the_gate_refuses_an_auc_drop_beyond_max_auc_drop(clicks):
    ref, y, rng = clicks
    worse = ref.copy()
    idx = rng.choice(len(ref), 600, replace=False)
    worse[idx] = rng.permutation(worse[idx])  # 15% of the scores shuffled: the ranking degrades
    params = Params(max_auc_drop=0.5, max_output_err=10.0)
    row = judge([ref], [worse], y, params, ["ctr"])
    drop = -row["auc_delta_pts"]
    assert drop > 0.5 and not row["passed"]
    assert f"AUC drops {drop:.3f} pt > max_auc_drop 0.5" in row["reason"]
    assert judge([ref], [worse], y, params.with_(max_auc_drop=drop + 0.01), ["ctr"])["passed"]


def test_logits_are_scored_through_their_sigmoid(clicks):
    ref, y, _ = clicks
    logits = np.log(ref / (1 - ref))
    row = judge([logits], [logits], y, Params(metric="auc"), ["ctr"])
    assert row["auc"] == pytest.approx(roc_auc_score(y, ref[:, 0]))
    assert row["logloss"] == pytest.approx(log_loss(y, ref[:, 0]), rel=1e-4)


def test_labels_that_are_not_clicks_are_refused(clicks):
    ref, y, _ = clicks
    with pytest.raises(ParamsError, match=r"labels of both classes 0 and 1; val_data's labels hold \[0, 1, 2\]"):
        judge([ref], [ref], y + (np.arange(len(y)) % 3 == 0) * (1 - y) * 2, Params(), ["ctr"])
    with pytest.raises(ParamsError, match=r"hold \[1\]"):  # one class only: no ranking to judge
        judge([ref], [ref], np.ones_like(y), Params(), ["ctr"])
