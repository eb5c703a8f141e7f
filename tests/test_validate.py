import numpy as np

from scaleproof.config import Params
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
