"""Calibration and validation data: real labelled digits, or seeded synthetic inputs for other models.

The digits split is part of the dataset's definition (fixed seed, stratified): the shipped weights
were trained on `train`, calibration draws from `calib`, accuracy is measured on `val`, and the
three never overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ParamsError
from .io_spec import Feed, ModelIO, feed_len, feed_take

logger = logging.getLogger(__name__)

DIGITS_SPLIT_SEED = 0
DIGITS_VAL_FRACTION = 0.2
DIGITS_CALIB_FRACTION = 0.15


@dataclass(frozen=True)
class Split:
    """Inputs (arrays named after the model's inputs, batch first) and integer labels, or None where
    the data has no labels."""

    x: Feed
    y: np.ndarray | None

    def __len__(self) -> int:
        return feed_len(self.x)

    def take(self, idx: np.ndarray) -> Split:
        return Split(feed_take(self.x, idx), None if self.y is None else self.y[idx])


def digits_splits(input_name: str = "input") -> dict[str, Split]:
    """scikit-learn's 8x8 handwritten digits (shipped with it), scaled to [0, 1], as 1x8x8 images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = data.target.astype(np.int64)
    idx = np.arange(len(y))
    rest, val = train_test_split(idx, test_size=DIGITS_VAL_FRACTION, stratify=y, random_state=DIGITS_SPLIT_SEED)
    frac = DIGITS_CALIB_FRACTION / (1 - DIGITS_VAL_FRACTION)
    train, calib = train_test_split(rest, test_size=frac, stratify=y[rest], random_state=DIGITS_SPLIT_SEED)
    return {name: Split({input_name: x[np.sort(i)]}, y[np.sort(i)]) for name, i in
            (("train", train), ("calib", calib), ("val", val))}


def synthetic_splits(io: ModelIO, seed: int, n_calib: int = 512, n_val: int = 512) -> dict[str, Split]:
    """Seeded inputs of the declared dtypes and ranges for models without data: validation then checks
    agreement with the FP32 reference, not task accuracy."""
    rng = np.random.default_rng(seed)
    return {"calib": Split(io.synthetic(n_calib, rng), None), "val": Split(io.synthetic(n_val, rng), None)}


def user_splits(io: ModelIO, seed: int, calib_data: str, val_data: str, options) -> dict[str, Split]:
    """The user's calibration and validation data; one source given for both is split in two disjoint,
    seeded halves."""
    from .user_data import load_source

    if calib_data == val_data:
        whole = load_source(val_data, io, "val", options)
        perm = np.random.default_rng(seed).permutation(len(whole))
        if len(whole) < 2:
            raise ParamsError(f"{val_data} holds {len(whole)} sample: one source for calib_data and val_data needs "
                              "at least 2 to split")
        half = len(whole) // 2
        return {"calib": whole.take(np.sort(perm[:half])), "val": whole.take(np.sort(perm[half:]))}
    return {"calib": load_source(calib_data, io, "calib", options), "val": load_source(val_data, io, "val", options)}


def data_options(params):
    from .user_data import DataOptions

    return DataOptions(image_mean=tuple(params.image_mean), image_std=tuple(params.image_std))


def splits_for(params, io: ModelIO, dataset: str) -> dict[str, Split]:
    """Calibration and validation splits of a run: the user's data where given, else the zoo's."""
    if params.val_data:
        return user_splits(io, params.seed, params.calib_data, params.val_data, data_options(params))
    if dataset == "digits":
        return digits_splits(io.input_names[0])
    if dataset == "synthetic":
        return synthetic_splits(io, params.seed)
    raise ParamsError(f"unknown dataset {dataset!r}: expected 'digits' or 'synthetic'")


def feed_sha256(split: Split) -> str:
    """Hash of a split's input arrays (in input order) and labels."""
    from .provenance import sha256_array

    return sha256_array(*split.x.values(), *([] if split.y is None else [split.y]))


def describe_data(params, splits: dict[str, Split], dataset: str) -> dict:
    """Where each split came from and the sha256 of the arrays used (for the manifest and the report)."""
    from .user_data import source_info

    out = {}
    for name, source in (("calib", params.calib_data), ("val", params.val_data)):
        split = splits[name]
        row = {"samples": len(split), "labels": split.y is not None, "sha256": feed_sha256(split)}
        row["source"] = source_info(source, data_options(params)) if source else {"kind": dataset}
        out[name] = row
    shared = duplicate_rows(splits["calib"], splits["val"])
    out["val"]["rows_also_in_calib"] = shared
    if shared:
        logger.warning(f"{shared} of {len(splits['val'])} validation samples also occur in the calibration data "
                       "(identical inputs): accuracy measured on them flatters the INT8 model; give disjoint "
                       "calib_data and val_data")
    return out


def row_digests(split: Split) -> list[bytes]:
    """One digest per sample over every input's values (dtype and shape included)."""
    import hashlib

    n = len(split)
    flat = [np.ascontiguousarray(v).reshape(n, -1) for v in split.x.values()]
    head = "|".join(f"{k}:{v.dtype}:{v.shape[1:]}" for k, v in split.x.items()).encode()
    return [hashlib.blake2b(head + b"".join(a[i].tobytes() for a in flat), digest_size=16).digest() for i in range(n)]


def duplicate_rows(calib: Split, val: Split) -> int:
    """Validation samples whose inputs are identical to a calibration sample's."""
    seen = set(row_digests(calib))
    return sum(d in seen for d in row_digests(val))


def adjusted(name: str, asked: int, used: int, what: str) -> list[dict[str, Any]]:
    """A parameter the data could not honour, said in the stage result instead of silently cut."""
    if asked and used < asked:
        return [{"parameter": name, "asked": asked, "used": used,
                 "why": f"the {what} split has {used} samples"}]
    return []


def select(split: Split, n: int, seed: int) -> Split:
    """A reproducible subset of `n` samples, stratified by label where labels exist."""
    if n <= 0:
        raise ParamsError(f"sample count must be positive, got {n}")
    if n >= len(split):
        return split
    rng = np.random.default_rng(seed)
    if split.y is None:
        return split.take(np.sort(rng.choice(len(split), size=n, replace=False)))
    classes, counts = np.unique(split.y, return_counts=True)
    # Largest-remainder allocation keeps each class's share and sums exactly to n.
    exact = counts / counts.sum() * n
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota))[: n - quota.sum()]:
        quota[i] += 1
    picked = [rng.choice(np.flatnonzero(split.y == c), size=q, replace=False) for c, q in zip(classes, quota, strict=True)]
    return split.take(np.sort(np.concatenate(picked)))
