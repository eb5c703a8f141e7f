import numpy as np
import pytest

from scaleproof.config import Params
from scaleproof.errors import ParamsError
from scaleproof.metrics import judge

REF = np.eye(10, dtype=np.float32)[np.arange(100) % 10] * 5
Y = np.arange(100) % 10
NAMES = ["logits"]


def test_identical_outputs_pass():
    row = judge([REF], [REF.copy()], Y, Params(), NAMES)
    assert row["passed"] and row["top1"] == 1.0 and row["top1_delta_pts"] == 0.0


def test_accuracy_drop_beyond_the_gate_fails_with_reason():
    out = REF.copy()
    out[:2] = np.roll(out[:2], 1, axis=1)  # two wrong predictions: -2 points
    row = judge([REF], [out], Y, Params(max_top1_drop=1.0), NAMES)
    assert not row["passed"] and "drops 2.00 pt" in row["reason"]
    assert judge([REF], [out], Y, Params(max_top1_drop=2.0), NAMES)["passed"]


def test_nan_outputs_fail():
    out = REF.copy()
    out[3, 3] = np.nan
    row = judge([REF], [out], Y, Params(), NAMES)
    assert not row["passed"] and row["nonfinite_outputs"] == 1 and "NaN/Inf" in row["reason"]


def test_without_labels_agreement_is_the_gate():
    out = REF.copy()
    out[:5] = np.roll(out[:5], 1, axis=1)
    row = judge([REF], [out], None, Params(min_agreement=0.97), NAMES)
    assert "top1" not in row and row["top1_agreement"] == 0.95 and not row["passed"]


def test_one_wide_output_is_not_judged_by_argmax_and_a_zero_int8_fails():
    ref = np.linspace(0.1, 2.0, 50, dtype=np.float32)[:, None]  # a score per sample, e.g. a ranking model
    row = judge([ref], [np.zeros_like(ref)], None, Params(), NAMES)
    assert row["metric"] == "cosine" and "top1_agreement" not in row
    assert not row["passed"] and "degenerate (near-zero" in row["reason"] and "output error 2.17 " in row["reason"]
    assert judge([ref], [ref * 1.001], None, Params(), NAMES)["passed"]


def test_constant_int8_outputs_are_refused_whatever_the_metric():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((40, 8)).astype(np.float32) + 5.0  # all positive: a constant is "close" on average
    const = np.repeat(ref.mean(0, keepdims=True), 40, axis=0)
    for metric in ("cosine", "error"):
        row = judge([ref], [const], None, Params(metric=metric, max_output_err=10.0), NAMES)
        assert not row["passed"] and "constant outputs" in row["reason"], metric


def test_degenerate_reference_is_reported_not_scored():
    tiny = REF * 1e-21
    row = judge([tiny], [tiny.copy()], Y, Params(), NAMES)
    assert not row["passed"] and "reference is degenerate (near-zero" in row["reason"]
    same = np.ones((10, 4), np.float32)
    assert "constant outputs" in judge([same], [same], None, Params(), NAMES)["reason"]


def test_cosine_gate_judges_embeddings_and_the_chosen_output():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((64, 16)).astype(np.float32)
    noisy = emb + 0.3 * rng.standard_normal(emb.shape).astype(np.float32)
    p = Params(metric="cosine", metric_output="embedding", max_output_err=1.0)
    row = judge([REF[:64], emb], [REF[:64], noisy], None, p, ["logits", "embedding"])
    assert row["judged_output"] == "embedding" and 0.9 < row["cosine_mean"] < 0.99 and not row["passed"]
    assert set(row["outputs"]) == {"logits", "embedding"}  # every output's parity is recorded
    assert judge([REF[:64], emb], [REF[:64], emb * 1.0001], None, p, ["logits", "embedding"])["passed"]
    with pytest.raises(ParamsError, match="metric_output 'nope' is not an output"):
        judge([emb], [emb], None, Params(metric_output="nope"), ["embedding"])


def test_explicit_metrics_that_cannot_apply_are_refused():
    with pytest.raises(ParamsError, match="needs labels"):
        judge([REF], [REF], None, Params(metric="top1"), NAMES)
    with pytest.raises(ParamsError, match="takes the argmax of a"):
        judge([REF[:, :1]], [REF[:, :1]], None, Params(metric="agreement"), NAMES)


def recall_at_1(outputs, labels, reference):
    """A user metric: top-1 against labels, as a user's own function would compute it."""
    return float((outputs.argmax(1) == labels).mean())


def test_user_metric_function_is_the_gate():
    out = REF.copy()
    out[:3] = np.roll(out[:3], 1, axis=1)
    p = Params(metric="user", metric_fn="tests.unit.test_validate:recall_at_1", max_metric_drop=0.02)
    row = judge([REF], [out], Y, p, NAMES)
    assert row["ref_score"] == 1.0 and row["score"] == 0.97 and not row["passed"] and "drops 0.03" in row["reason"]


def test_the_metric_reads_the_judged_output_even_when_another_output_is_worse():
    out = REF.copy()
    out[:50] = np.roll(out[:50], 1, axis=1)  # half the predictions wrong on the judged output
    aux = np.linspace(1, 2, 100, dtype=np.float32)[:, None]
    row = judge([REF, aux], [out, 4 * aux], None, Params(), ["logits", "aux"])
    assert row["top1_agreement"] == 0.5 and not row["passed"] and "agreement 0.5000" in row["reason"]
    assert row["max_rel_err"] == row["outputs"]["aux"]["max_rel_err"]  # the worst output is still on record
    # a one-value-per-sample output as the worst one does not break the agreement metric
    row = judge([REF, aux], [REF, 4 * aux], None, Params(), ["logits", "aux"])
    assert row["top1_agreement"] == 1.0 and row["passed"]


def test_outputs_with_a_large_common_offset_are_judged_by_how_they_vary():
    rng = np.random.default_rng(0)
    ref = 10 + 0.1 * rng.standard_normal((200, 16)).astype(np.float32)
    unrelated = 10 + 0.1 * rng.standard_normal((200, 16)).astype(np.float32)
    row = judge([ref], [unrelated], None, Params(metric="cosine", inputs=[{"name": "x", "shape": ["batch", 2]}]), NAMES)
    assert row["cosine_mean"] > 0.99 and not row["passed"] and "output error" in row["reason"]


def nan_metric(outputs, labels, reference):
    return float("nan") if outputs is not reference else 1.0


def test_a_user_metric_that_returns_nan_fails_the_gate():
    row = judge([REF], [REF.copy()], Y, Params(metric="user", metric_fn="tests.unit.test_validate:nan_metric"), NAMES)
    assert not row["passed"] and "drops nan" in row["reason"]


def test_labels_that_do_not_fit_the_outputs_are_not_a_passing_top1():
    wrong = (Y + 3) % 10  # the reference is never right: its top-1 is at chance or below
    row = judge([REF], [REF.copy()], wrong, Params(), NAMES)
    assert not row["passed"] and "is at chance (1/10)" in row["reason"]
