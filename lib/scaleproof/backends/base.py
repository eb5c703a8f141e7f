"""What every backend provides: build an engine into the store, load it back (checked), run it."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io_spec import Feed, ModelIO

if TYPE_CHECKING:
    from ..config import Params


def usable_threads(threads: int) -> int:
    """`threads` or, for 0, the cores this process may run on."""
    if threads > 0:
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class BuildInputs:
    """Everything a backend may build from; each takes what its precision needs."""

    model_spec: str
    io: ModelIO
    onnx_by_precision: dict[str, str]  # precision -> ONNX path (fp32 model, Q/DQ int8 model, …)
    max_batch: int
    threads: int
    weights: str = ""  # the user's weights file (the torch backend stores the loaded state dict)
    weights_strict: bool = True  # with weights_ignore: how the weights file is loaded (see Params)
    weights_ignore: tuple[str, ...] = ()

    def profile(self, min_batch: int = 1) -> dict[str, Any]:
        """The sidecar's input profile: the model's inputs and outputs and the batch range."""
        return {"io": self.io.model_dump(mode="json"), "min_batch": min_batch, "max_batch": self.max_batch}


@dataclass(frozen=True)
class BuildJob:
    """One engine to build: the model's artifacts, the precision and mode, where it goes, and the run's
    parameters (each backend reads its own options from them)."""

    inputs: BuildInputs
    precision: str
    mode: str  # the torch backend's eager, cuda_graph or compile; "" elsewhere
    store: Path
    params: Params
    int8_dynamic: bool = False  # the INT8 model is dynamic INT8 (no Q/DQ): not every backend can build it


class EngineSkipped(Exception):
    """A backend cannot build this engine here; the message says why (the build stage records it and goes on)."""


class Engine(ABC):
    """A loaded engine: host arrays in, host arrays out, device work finished before returning."""

    name: str
    backend: str
    precision: str
    device: str  # "cpu" or "cuda"
    max_batch: int

    @abstractmethod
    def infer(self, x: Feed) -> list[np.ndarray]:
        """Run one batch (N <= max_batch) of named inputs; every output as a host array, in output order."""

    def load_samples(self, samples: Feed) -> None:
        """LoadGen's QSL load (untimed): keep the samples where this engine reads inputs from.

        On the host by default; a GPU backend may keep them in device memory, as MLPerf harnesses do.
        """
        self._samples = samples
        self._gather = {k: self.host_buffer((self.max_batch, *v.shape[1:]), v.dtype) for k, v in samples.items()}

    def infer_indices(self, idx: np.ndarray) -> list[np.ndarray]:
        """Run the loaded samples at `idx` as one batch (gathered into buffers allocated once)."""
        n = len(idx)
        for k, v in self._samples.items():
            np.take(v, idx, axis=0, out=self._gather[k][:n])
        return self.infer({k: b[:n] for k, b in self._gather.items()})

    inflight = 1  # batches this engine can have running at once through launch_indices

    def launch_indices(self, idx: np.ndarray) -> Callable[[], list[np.ndarray]]:
        """Start the loaded samples at `idx` as one batch; the returned function waits for its outputs. The
        outputs stay valid until the `inflight`-th next launch. Here the batch finishes before this returns; an
        engine that runs batches asynchronously (`inflight` > 1) overrides it, so the host forms and answers
        one batch while the device runs the next (as `instance_group { count: 2 }` does in Triton)."""
        out = self.infer_indices(idx)
        return lambda: out

    def sut(self, library, config, complete):
        """The system under test LoadGen drives for this engine in this process: the samples loaded into it,
        and a dynamic batcher in front of it (`bench.sut` says what the interface is)."""
        from ..bench.batcher import DynamicBatcher

        library.load_into(self)
        shape = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(library.samples.items()))
        return DynamicBatcher(self, config.max_batch, config.max_delay_s, complete, config.fixed_batch, shape,
                              pipelined=config.pipelined)

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
