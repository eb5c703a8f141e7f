"""Calibration and validation data: real labelled digits, or seeded synthetic inputs for other models.

The digits split is part of the dataset's definition (fixed seed, stratified): the shipped weights
were trained on `train`, calibration draws from `calib`, accuracy is measured on `val`, and the
three never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParamsError

DIGITS_SPLIT_SEED = 0
DIGITS_VAL_FRACTION = 0.2
DIGITS_CALIB_FRACTION = 0.15


@dataclass(frozen=True)
class Split:
    """Inputs (float32, batch first) and integer labels, or None where the data has no labels."""

    x: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return len(self.x)

    def take(self, idx: np.ndarray) -> Split:
        return Split(self.x[idx], None if self.y is None else self.y[idx])


def digits_splits() -> dict[str, Split]:
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
    return {name: Split(x[np.sort(i)], y[np.sort(i)]) for name, i in
            (("train", train), ("calib", calib), ("val", val))}


def synthetic_splits(input_shape: tuple[int, ...], seed: int, n_calib: int = 512, n_val: int = 512) -> dict[str, Split]:
    """Seeded standard-normal inputs for models without a dataset: validation then checks agreement
    with the FP32 reference, not task accuracy."""
    rng = np.random.default_rng(seed)
    return {
        "calib": Split(rng.standard_normal((n_calib, *input_shape), dtype=np.float32), None),
        "val": Split(rng.standard_normal((n_val, *input_shape), dtype=np.float32), None),
    }


def splits_for(dataset: str, input_shape: tuple[int, ...], seed: int) -> dict[str, Split]:
    if dataset == "digits":
        return digits_splits()
    if dataset == "synthetic":
        return synthetic_splits(input_shape, seed)
    raise ParamsError(f"unknown dataset {dataset!r}: expected 'digits' or 'synthetic'")


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
