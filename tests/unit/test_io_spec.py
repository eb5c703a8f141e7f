"""Model inputs declared in params: named, typed, with named dynamic dimensions; data checked against them."""

import numpy as np
import pytest

from scaleproof.config import Params
from scaleproof.errors import ParamsError
from scaleproof.io_spec import ModelIO

TOKENS = [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [5, 50]},
          {"name": "attention_mask", "dtype": "bool", "shape": ["batch", "seq"]},
          {"name": "scale", "dtype": "float16", "shape": ["batch", 2], "range": [-1, 1]}]


def test_synthetic_data_follows_each_declared_dtype_shape_and_range():
    io = ModelIO(inputs=TOKENS, outputs=["out"], dims={"seq": 7})
    feed = io.synthetic(5, np.random.default_rng(0))
    assert {k: (v.dtype.name, v.shape) for k, v in feed.items()} == {
        "input_ids": ("int64", (5, 7)), "attention_mask": ("bool", (5, 7)), "scale": ("float16", (5, 2))}
    assert feed["input_ids"].min() >= 5 and feed["input_ids"].max() < 50 and np.abs(feed["scale"]).max() <= 1
    assert io.dynamic_axes()["input_ids"] == {0: "batch", 1: "seq"} and io.check_feed(feed, "data")


@pytest.mark.parametrize("change, message", [
    (lambda f: f.pop("scale"), r"no array for input\(s\) \['scale'\]"),
    (lambda f: f.update(input_ids=f["input_ids"].astype(np.int32)), "input 'input_ids' has dtype int32; expected "
                                                                     r"input_ids: \(N, 7\) int64"),
    (lambda f: f.update(attention_mask=f["attention_mask"][:, :3]), r"has shape \(5, 3\); expected attention_mask"),
    (lambda f: f.update(scale=f["scale"][:2]), "has 2 rows, the other inputs 5"),
    (lambda f: f.update(scale=np.full((5, 2), np.inf, np.float16)), "contains NaN/Inf"),
])
def test_data_that_does_not_fit_is_refused_naming_the_input(change, message):
    io = ModelIO(inputs=TOKENS, outputs=["out"], dims={"seq": 7})
    feed = io.synthetic(5, np.random.default_rng(0))
    change(feed)
    with pytest.raises(ParamsError, match=message):
        io.check_feed(feed, "val data")


@pytest.mark.parametrize("values, message", [
    (dict(inputs=TOKENS), "give its size in dims, e.g. dims: {seq: 128}"),
    (dict(inputs=[{"name": "x", "dtype": "int65", "shape": ["batch"]}]), "dtype 'int65' is not one of"),
    (dict(inputs=[{"name": "x", "shape": [4, "batch"]}]), "first dimension must be 'batch'"),
    (dict(inputs=[TOKENS[0], TOKENS[0]], dims={"seq": 4}), r"input names must be unique, repeated: \['input_ids'\]"),
    (dict(inputs=TOKENS, dims={"seq": 4}, input_shape=[3]), "either inputs .* or input_shape"),
    (dict(metric="user"), "metric=user needs metric_fn"),
    (dict(inputs=[{"name": "x", "shape": ["batch", 2]}], outputs=["x"]), r"\['x'\] named both an input and an output"),
    (dict(calib_data="a.npz"), "give both calib_data and val_data"),
])
def test_bad_declarations_are_parameter_errors(values, message):
    with pytest.raises(ParamsError, match=message):
        Params.parse({"model": "pkg.mod:f", **values})


def test_relative_data_paths_are_made_absolute_and_missing_ones_refused(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"")
    p = Params(model="pkg.mod:f", input_shape=[3], calib_data="d.npz", val_data="d.npz").with_absolute_paths(tmp_path)
    assert p.calib_data == str(tmp_path / "d.npz") == p.val_data
    with pytest.raises(ParamsError, match="weights: .*missing.pt does not exist"):
        Params(weights="missing.pt").with_absolute_paths(tmp_path)
    assert Params(calib_data="pkg.mod:loader", val_data="pkg.mod:loader").with_absolute_paths(tmp_path).calib_data \
        == "pkg.mod:loader"
