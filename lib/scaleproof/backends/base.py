"""What every backend provides: build an engine into the store, load it back (checked), run it."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np


def usable_threads(threads: int) -> int:
    """`threads` or, for 0, the cores this process may run on."""
    if threads > 0:
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class BuildInputs:
    """Everything a backend may build from; each takes what its precision needs."""

    model_spec: str
    input_shape: tuple[int, ...]
    input_name: str
    output_name: str
    onnx_by_precision: dict[str, str]  # precision -> ONNX path (fp32 model, Q/DQ int8 model, …)
    max_batch: int
    threads: int


class Engine(ABC):
    """A loaded engine: host arrays in, host arrays out, device work finished before returning."""

    name: str
    backend: str
    precision: str
    device: str  # "cpu" or "cuda"
    max_batch: int

    @abstractmethod
    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run one batch (N <= max_batch) and return the outputs as a host array."""

    def load_samples(self, samples: np.ndarray) -> None:
        """LoadGen's QSL load (untimed): keep the samples where this engine reads inputs from.

        On the host by default; a GPU backend may keep them in device memory, as MLPerf harnesses do.
        """
        self._samples = samples
        self._gather = self.host_buffer((self.max_batch, *samples.shape[1:]), samples.dtype)

    def infer_indices(self, idx: np.ndarray) -> np.ndarray:
        """Run the loaded samples at `idx` as one batch (gathered into a buffer allocated once)."""
        n = len(idx)
        np.take(self._samples, idx, axis=0, out=self._gather[:n])
        return self.infer(self._gather[:n])

    def host_buffer(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """A host array for inputs, allocated once by callers (page-locked where the backend can)."""
        return np.zeros(shape, dtype)

    def info(self) -> dict[str, Any]:
        """How the engine was loaded: mode, load/compile seconds, precision details."""
        return {}

    def memory(self) -> dict[str, Any]:
        """Device memory this engine holds, where the backend can tell; empty on CPU."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device resources."""
