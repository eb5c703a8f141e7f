"""What a model takes and gives: named inputs (dtype, shape with named dynamic dimensions, value
range for synthetic data) and named outputs; and batches of named arrays ("feeds") passed between
data, engines, the batcher and LoadGen.

A feed is a plain `dict[str, np.ndarray]`, every array batch-first with the same number of rows,
in the order of the model's inputs. Engines return a list of output arrays in the order of the
model's outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ParamsError

Feed = dict[str, np.ndarray]
BATCH_DIM = "batch"
DTYPES = ("float32", "float16", "int64", "int32", "bool")
FLOAT_DTYPES = ("float32", "float16")


class InputSpec(BaseModel):
    """One model input: `shape` includes the batch axis first (`batch`); other named dimensions
    (`seq`, …) take their size from the `dims` parameter wherever a concrete size is needed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    dtype: str = "float32"
    shape: list[int | str] = Field(min_length=1)
    range: list[float] | None = None  # [low, high] of synthetic values (ints: high exclusive)

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPES:
            raise ValueError(f"dtype {v!r} is not one of {', '.join(DTYPES)}")
        return v

    @model_validator(mode="after")
    def _rules(self) -> InputSpec:
        if self.shape[0] != BATCH_DIM:
            raise ValueError(f"input {self.name!r}: the first dimension must be {BATCH_DIM!r}, got {self.shape[0]!r}")
        for d in self.shape[1:]:
            if isinstance(d, int) and d <= 0:
                raise ValueError(f"input {self.name!r}: dimension sizes must be positive, got {self.shape}")
            if isinstance(d, str) and (d == BATCH_DIM or not d.isidentifier()):
                raise ValueError(f"input {self.name!r}: named dimension {d!r} must be an identifier other than "
                                 f"{BATCH_DIM!r}")
        if self.range is not None and (len(self.range) != 2 or not self.range[0] <= self.range[1]):
            raise ValueError(f"input {self.name!r}: range must be [low, high] with low <= high, got {self.range}")
        return self

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def sample_shape(self, dims: Mapping[str, int]) -> tuple[int, ...]:
        """The shape of one sample (no batch axis), named dimensions resolved from `dims`."""
        out = []
        for d in self.shape[1:]:
            if isinstance(d, str):
                if d not in dims:
                    raise ParamsError(f"input {self.name!r} has the named dimension {d!r}: give its size in dims, "
                                      f"e.g. dims: {{{d}: 128}}")
                out.append(int(dims[d]))
            else:
                out.append(d)
        return tuple(out)

    def describe(self, dims: Mapping[str, int]) -> str:
        try:
            shape = ", ".join(map(str, ("N", *self.sample_shape(dims))))
        except ParamsError:
            shape = ", ".join(map(str, ("N", *self.shape[1:])))
        return f"{self.name}: ({shape}) {self.dtype}"


class ModelIO(BaseModel):
    """The model's inputs (in the order forward() takes them) and outputs (names, in order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[InputSpec] = Field(min_length=1)
    outputs: list[str] = Field(min_length=1)
    dims: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> ModelIO:
        names = [i.name for i in self.inputs]
        for what, seq in (("input", names), ("output", self.outputs)):
            dup = {n for n in seq if seq.count(n) > 1}
            if dup:
                raise ValueError(f"{what} names must be unique, repeated: {sorted(dup)}")
        both = sorted(set(names) & set(self.outputs))
        if both:
            raise ValueError(f"{both} named both an input and an output: give the outputs other names")
        for i in self.inputs:
            i.sample_shape(self.dims)  # every named dimension has a size
        return self

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        return {i.name: i.sample_shape(self.dims) for i in self.inputs}

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """name -> {axis: dimension name} of every named (dynamic) dimension, for the exporters."""
        return {i.name: {a: d for a, d in enumerate(i.shape) if isinstance(d, str)} for i in self.inputs}

    def describe(self) -> str:
        return "; ".join(i.describe(self.dims) for i in self.inputs)

    def synthetic(self, n: int, rng: np.random.Generator) -> Feed:
        """`n` seeded samples: floats standard normal (or uniform in `range`), integers uniform in
        `range` (default [0, 2)), booleans fair coin flips."""
        feed = {}
        for spec in self.inputs:
            shape = (n, *spec.sample_shape(self.dims))
            if spec.dtype == "bool":
                feed[spec.name] = rng.random(shape) < 0.5
            elif spec.is_float:
                x = rng.standard_normal(shape, dtype=np.float32) if spec.range is None else \
                    rng.uniform(spec.range[0], spec.range[1], shape).astype(np.float32)
                feed[spec.name] = x.astype(spec.dtype)
            else:
                lo, hi = spec.range or (0, 2)
                feed[spec.name] = rng.integers(int(lo), max(int(hi), int(lo) + 1), shape).astype(spec.dtype)
        return feed

    def check_feed(self, feed: Mapping[str, Any], where: str) -> Feed:
        """Refuse data that this model cannot take, naming the input and the expected spec."""
        if not isinstance(feed, Mapping):
            raise ParamsError(f"{where}: expected arrays named after the inputs ({self.describe()}), "
                              f"got {type(feed).__name__}")
        missing = [n for n in self.input_names if n not in feed]
        if missing:
            raise ParamsError(f"{where}: no array for input(s) {missing}; it has {sorted(feed)}; expected "
                              f"{self.describe()}")
        out: Feed = {}
        rows = None
        for spec in self.inputs:
            a = np.asarray(feed[spec.name])
            expect = spec.describe(self.dims)
            if a.ndim == 0 or len(a) == 0:
                raise ParamsError(f"{where}: input {spec.name!r} is empty; expected {expect} with N > 0")
            if a.dtype != np.dtype(spec.dtype):
                raise ParamsError(f"{where}: input {spec.name!r} has dtype {a.dtype}; expected {expect}")
            if tuple(a.shape[1:]) != spec.sample_shape(self.dims):
                raise ParamsError(f"{where}: input {spec.name!r} has shape {tuple(a.shape)}; expected {expect}")
            if spec.is_float and not np.isfinite(a).all():
                raise ParamsError(f"{where}: input {spec.name!r} contains NaN/Inf")
            if rows is not None and len(a) != rows:
                raise ParamsError(f"{where}: input {spec.name!r} has {len(a)} rows, the other inputs {rows}")
            rows = len(a)
            out[spec.name] = np.ascontiguousarray(a)
        return out

    @classmethod
    def single(cls, sample_shape: list[int] | tuple[int, ...], name: str = "input",
               outputs: list[str] | None = None) -> ModelIO:
        """The `input_shape` shorthand: one float32 input with a dynamic batch axis."""
        return cls(inputs=[InputSpec(name=name, dtype="float32", shape=[BATCH_DIM, *sample_shape])],
                   outputs=list(outputs or ["logits"]))


# feeds ---------------------------------------------------------------------------------------------
def feed_len(feed: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(feed.values())))


def feed_slice(feed: Mapping[str, np.ndarray], start: int, stop: int) -> Feed:
    return {k: np.ascontiguousarray(v[start:stop]) for k, v in feed.items()}


def feed_take(feed: Mapping[str, np.ndarray], idx: np.ndarray) -> Feed:
    return {k: v[idx] for k, v in feed.items()}


def feed_resize(feed: Mapping[str, np.ndarray], n: int) -> Feed:
    """`n` rows, cycling through the feed's rows (for a timing batch larger than the data)."""
    idx = np.arange(n) % feed_len(feed)
    return {k: np.ascontiguousarray(v[idx]) for k, v in feed.items()}


