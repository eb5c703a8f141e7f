import numpy as np
import pandas as pd
import pytest
from PIL import Image

from scaleproof.errors import ParamsError
from scaleproof.io_spec import InputSpec, ModelIO
from scaleproof.provenance import sha256_file
from scaleproof.user_data import DataOptions, load_source, source_info

TEXT_IO = ModelIO(inputs=[InputSpec(name="input_ids", dtype="int64", shape=["batch", "seq"]),
                          InputSpec(name="attention_mask", dtype="int64", shape=["batch", "seq"])],
                  outputs=["logits"], dims={"seq": 8})
IMAGE_IO = ModelIO(inputs=[InputSpec(name="image", shape=["batch", 3, 4, 5])], outputs=["logits"])
# a scalar int32 input and a float32 vector input, for the table dtype rules
MIXED_IO = ModelIO(inputs=[InputSpec(name="t", dtype="int32", shape=["batch"]),
                           InputSpec(name="v", shape=["batch", 3])], outputs=["y"])


def text_data(seed: int = 0, n: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(0, 1000, (n, 8)), "attention_mask": (rng.random((n, 8)) < 0.8).astype(np.int64),
            "labels": rng.integers(0, 3, n)}


def my_loader(split: str) -> dict[str, np.ndarray]:
    return text_data(seed=1 if split == "val" else 2)


def tuple_loader(split: str):
    d = text_data()
    return d["input_ids"], d["labels"]


def broken_loader(split: str):
    raise RuntimeError("no network")


def refused(fn, *fragments: str) -> str:
    with pytest.raises(ParamsError) as e:
        fn()
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))
    return str(e.value)


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def assert_same(split, data):
    assert list(split.x) == ["input_ids", "attention_mask"]
    for k in split.x:
        assert split.x[k].dtype == np.int64 and np.array_equal(split.x[k], data[k])
    assert split.y.dtype == np.int64 and np.array_equal(split.y, data["labels"])


# round trips -------------------------------------------------------------------------------------------
def test_npz_round_trip_and_info(tmp_path):
    data = text_data()
    src = write_npz(tmp_path / "d.npz", **data)
    assert_same(load_source(src, TEXT_IO, "val"), data)
    info = source_info(src)
    assert info == {"kind": "npz", "source": src, "sha256": sha256_file(src)}
    # without labels; a relative path resolves against base_dir
    write_npz(tmp_path / "nolab.npz", input_ids=data["input_ids"], attention_mask=data["attention_mask"])
    assert load_source("nolab.npz", TEXT_IO, "calib", DataOptions(base_dir=tmp_path)).y is None


def test_parquet_list_cells_round_trip(tmp_path):
    data = text_data()
    df = pd.DataFrame({"input_ids": list(data["input_ids"]), "attention_mask": list(data["attention_mask"]),
                       "labels": data["labels"]})
    df.to_parquet(tmp_path / "d.parquet")
    assert_same(load_source(str(tmp_path / "d.parquet"), TEXT_IO, "val"), data)
    assert source_info(str(tmp_path / "d.parquet"))["kind"] == "parquet"


def wide(data: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = {f"{k}.{i}": data[k][:, i] for k in ("input_ids", "attention_mask") for i in range(8)}
    return pd.DataFrame({**cols, "labels": data["labels"]})


def test_csv_and_parquet_numbered_columns_round_trip(tmp_path):
    data = text_data()
    wide(data).to_csv(tmp_path / "d.csv", index=False)
    wide(data).to_parquet(tmp_path / "d.parquet")
    assert_same(load_source(str(tmp_path / "d.csv"), TEXT_IO, "val"), data)
    assert_same(load_source(str(tmp_path / "d.parquet"), TEXT_IO, "val"), data)
    assert source_info(str(tmp_path / "d.csv"))["kind"] == "csv"


def test_table_casts_only_without_loss(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((5, 3))
    df = pd.DataFrame({"t": np.arange(5, dtype=np.int64), **{f"v.{i}": v[:, i] for i in range(3)}})
    df.to_csv(tmp_path / "ok.csv", index=False)
    s = load_source(str(tmp_path / "ok.csv"), MIXED_IO, "val")
    assert s.x["t"].dtype == np.int32 and s.x["v"].dtype == np.float32 and s.y is None
    assert np.allclose(s.x["v"], v, atol=1e-6)
    df.assign(t=df["t"] + 0.5).to_csv(tmp_path / "float.csv", index=False)
    refused(lambda: load_source(str(tmp_path / "float.csv"), MIXED_IO, "val"), "'t'", "floats", "int32")
    df.assign(t=df["t"] + 2**40).to_csv(tmp_path / "big.csv", index=False)
    refused(lambda: load_source(str(tmp_path / "big.csv"), MIXED_IO, "val"), "'t'", "int32 cannot hold")
    df.to_csv(tmp_path / "indexed.csv")  # pandas' default writes the index as 'Unnamed: 0'
    refused(lambda: load_source(str(tmp_path / "indexed.csv"), MIXED_IO, "val"), "Unnamed: 0", "index=False")
    df.drop(columns="v.2").to_csv(tmp_path / "short.csv", index=False)
    refused(lambda: load_source(str(tmp_path / "short.csv"), MIXED_IO, "val"), "'v'", "v.2")


def test_table_refuses_higher_rank_inputs(tmp_path):
    pd.DataFrame({"image.0": [1.0]}).to_csv(tmp_path / "d.csv", index=False)
    refused(lambda: load_source(str(tmp_path / "d.csv"), IMAGE_IO, "val"), "'image'", ".npz")


def test_loader_round_trip_and_info():
    src = "tests.unit.test_user_data:my_loader"
    assert_same(load_source(src, TEXT_IO, "val"), my_loader("val"))
    assert_same(load_source(src, TEXT_IO, "calib"), my_loader("calib"))
    info = source_info(src)
    assert info["kind"] == "loader" and info["source"] == src and len(info["sha256"]) == 64
    assert source_info(src) == info  # deterministic
    refused(lambda: load_source("tests.unit.test_user_data:tuple_loader", TEXT_IO, "val"), "dict", "tuple")
    refused(lambda: load_source("tests.unit.test_user_data:nope", TEXT_IO, "val"), "no 'nope'")
    refused(lambda: load_source("no_such_pkg_xyz:load", TEXT_IO, "val"), "no_such_pkg_xyz", "cannot be imported")
    with pytest.raises(RuntimeError) as e:
        load_source("tests.unit.test_user_data:broken_loader", TEXT_IO, "val")
    assert "broken_loader('val')" in "".join(e.value.__notes__)


# image folders -----------------------------------------------------------------------------------------
def save(path, pixels: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def test_image_folder_labels_and_normalisation(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {f"{c}/{i}.png": rng.integers(0, 256, (4, 5, 3)) for c in ("cat", "dog") for i in range(2)}
    imgs["cat/0.png"][1, 2] = (255, 0, 128)
    imgs["dog/2.png"] = rng.integers(0, 256, (4, 5, 3))
    for rel, px in imgs.items():
        save(tmp_path / rel, px)
    (tmp_path / ".DS_Store").write_bytes(b"junk")  # hidden files are skipped
    s = load_source(str(tmp_path), IMAGE_IO, "val")
    assert s.x["image"].shape == (5, 3, 4, 5) and s.x["image"].dtype == np.float32
    assert s.y.tolist() == [0, 0, 1, 1, 1]
    expect = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    assert np.allclose(s.x["image"][0, :, 1, 2], expect, atol=1e-5)
    info = source_info(str(tmp_path))
    assert info["kind"] == "images" and len(info["sha256"]) == 64
    save(tmp_path / "dog/2.png", imgs["dog/2.png"] + 1)
    assert source_info(str(tmp_path))["sha256"] != info["sha256"]


def test_image_folder_resize_grayscale_float16_and_unlabelled(tmp_path):
    save(tmp_path / "a.png", np.full((20, 30, 3), 255))
    save(tmp_path / "b.jpg", np.zeros((7, 9, 3)))
    gray = ModelIO(inputs=[InputSpec(name="x", dtype="float16", shape=["batch", 1, 6, 6])], outputs=["y"])
    s = load_source(str(tmp_path), gray, "calib", DataOptions(image_mean=(0.5,), image_std=(0.5,)))
    assert s.y is None and s.x["x"].shape == (2, 1, 6, 6) and s.x["x"].dtype == np.float16
    assert np.allclose(s.x["x"][0], 1.0) and np.allclose(s.x["x"][1], -1.0)
    # the ImageNet defaults have 3 values: a 1-channel model needs its own
    refused(lambda: load_source(str(tmp_path), gray, "val"), "image_mean", "1 channel")
    refused(lambda: load_source(str(tmp_path), TEXT_IO, "val"), "image folder", "input_ids")


def test_image_folder_refusals(tmp_path):
    (tmp_path / "empty").mkdir()
    refused(lambda: load_source(str(tmp_path / "empty"), IMAGE_IO, "val"), "no images")
    save(tmp_path / "cls/a/0.png", np.zeros((4, 5, 3)))
    (tmp_path / "cls/b").mkdir()
    refused(lambda: load_source(str(tmp_path / "cls"), IMAGE_IO, "val"), "class folder 'b' has no images")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/x.png").write_bytes(b"not a png")
    refused(lambda: load_source(str(tmp_path / "bad"), IMAGE_IO, "val"), "cannot read image", "x.png")


# refusals ----------------------------------------------------------------------------------------------
def npz_with(tmp_path, **changes):
    data = {**text_data(), **changes}
    return write_npz(tmp_path / "d.npz", **{k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize("changes, fragments", [
    ({"input_ids": np.zeros((6, 8), np.int32)}, ["'input_ids'", "int32", "input_ids: (N, 8) int64"]),
    ({"attention_mask": np.zeros((6, 7), np.int64)}, ["'attention_mask'", "(6, 7)", "(N, 8) int64"]),
    ({"attention_mask": None}, ["attention_mask", "no array"]),
    ({"input_id": np.zeros((6, 8), np.int64)}, ["'input_id'", "match no model input"]),
    ({"input_ids": np.zeros((0, 8), np.int64), "attention_mask": np.zeros((0, 8), np.int64),
      "labels": np.zeros(0, np.int64)}, ["'input_ids'", "empty"]),
    ({"labels": np.zeros(5, np.int64)}, ["labels", "5 rows"]),
    ({"labels": -np.ones(6, np.int64)}, ["labels", "non-negative"]),
    ({"labels": np.zeros(6, np.float32)}, ["labels", "integer"]),
])
def test_npz_refusals(tmp_path, changes, fragments):
    src = npz_with(tmp_path, **changes)
    msg = refused(lambda: load_source(src, TEXT_IO, "calib"), *fragments)
    assert msg.startswith(f"calib data {src}")


def test_nan_refused(tmp_path):
    v = np.ones((3, 3), np.float32)
    v[1, 1] = np.nan
    src = write_npz(tmp_path / "d.npz", t=np.zeros(3, np.int32), v=v)
    refused(lambda: load_source(src, MIXED_IO, "val"), "'v'", "NaN")
    pd.DataFrame({"t": [1, 2], "v": [[1.0, np.nan, 2.0], [1.0, 1.0, 1.0]]}).to_parquet(tmp_path / "d.parquet")
    refused(lambda: load_source(str(tmp_path / "d.parquet"), MIXED_IO, "val"), "'v'", "NaN")


def test_file_refusals(tmp_path):
    refused(lambda: load_source(str(tmp_path / "nope.npz"), TEXT_IO, "val"), "no such file", "nope.npz", ".npz")
    refused(lambda: source_info(str(tmp_path / "nope.npz")), "no such file")
    (tmp_path / "d.txt").write_text("1,2\n")
    refused(lambda: load_source(str(tmp_path / "d.txt"), TEXT_IO, "val"), "unknown file type '.txt'", ".parquet")
    for name in ("bad.npz", "bad.parquet"):
        (tmp_path / name).write_bytes(b"garbage")
        refused(lambda name=name: load_source(str(tmp_path / name), TEXT_IO, "val"), "cannot read", name)
    (tmp_path / "empty.csv").write_text("")
    refused(lambda: load_source(str(tmp_path / "empty.csv"), TEXT_IO, "val"), "cannot read", "csv")
    (tmp_path / "header.csv").write_text("input_ids.0\n")
    refused(lambda: load_source(str(tmp_path / "header.csv"), TEXT_IO, "val"), "no rows")
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    refused(lambda: load_source(str(tmp_path / "one.npz"), TEXT_IO, "val"), "unnamed array", "np.savez")
    src = write_npz(tmp_path / "obj.npz", input_ids=np.array([{"a": 1}], dtype=object))
    refused(lambda: load_source(src, TEXT_IO, "val"), "cannot read")
    np.savez(tmp_path / "pos.npz", np.zeros((2, 8), np.int64))
    refused(lambda: load_source(str(tmp_path / "pos.npz"), TEXT_IO, "val"), "'arr_0'", "np.savez")
    pd.DataFrame({"input_ids": ["[1, 2]"]}).to_csv(tmp_path / "cells.csv", index=False)
    refused(lambda: load_source(str(tmp_path / "cells.csv"), TEXT_IO, "val"), "row 0", "input_ids.0 … input_ids.7")
