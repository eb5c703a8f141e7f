import numpy as np
import pytest

from scaleproof.datasets import digits_splits, select, synthetic_splits
from scaleproof.errors import ParamsError
from scaleproof.io_spec import ModelIO


def test_digits_splits_are_disjoint_and_cover_the_data():
    s = digits_splits()
    rows = {k: {v.tobytes() for v in split.x["input"]} for k, split in s.items()}
    assert sum(len(v) for v in s.values()) == 1797
    assert len(s["val"]) == 360 and len(s["calib"]) > 200
    # no image appears in two splits (digits has a few exact duplicates; allow at most those)
    assert len(rows["calib"] & rows["val"]) <= 2 and len(rows["train"] & rows["val"]) <= 5
    x = s["val"].x["input"]
    assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_select_is_seeded_and_stratified():
    calib = digits_splits()["calib"]
    a, b, c = select(calib, 100, 0), select(calib, 100, 0), select(calib, 100, 1)
    assert np.array_equal(a.x["input"], b.x["input"]) and not np.array_equal(a.x["input"], c.x["input"])
    assert len(a) == 100 and np.bincount(a.y).tolist() == [10] * 10
    assert select(calib, 10**6, 0) is calib
    with pytest.raises(ParamsError):
        select(calib, 0, 0)


def test_synthetic_splits_are_seeded():
    io = ModelIO.single((3, 4, 4))
    a, b = synthetic_splits(io, 5), synthetic_splits(io, 5)
    assert np.array_equal(a["val"].x["input"], b["val"].x["input"]) and a["val"].y is None
    assert not np.array_equal(a["val"].x["input"], synthetic_splits(io, 6)["val"].x["input"])
