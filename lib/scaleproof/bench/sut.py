"""What LoadGen drives and what it draws from, split as MLPerf's reference harnesses split them.

The query sample library (`SampleLibrary`) owns the samples: it loads them into an engine before the system
under test starts (LoadGen's QSL load, untimed; a GPU engine keeps them in device memory) and records, from
LoadGen's own load callback, the performance set LoadGen asked for. The system under test (`Sut`) is one
interface: started, fed (request id, sample index) pairs from LoadGen's issue thread, stopped when LoadGen is
done. Every measured target makes its own with `target.sut(library, config, complete)`: an engine in this
process (a dynamic batcher over it, `Engine.sut`), a pool of worker processes (`WorkerPool.sut`), a model
served by Triton (`served.ServedEngine.sut`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..io_spec import Feed, feed_len

# complete(request ids, the first output's rows for them or None); rows are valid only until it returns
CompleteFn = Callable[[list[int], np.ndarray | None], None]


@dataclass(frozen=True)
class SutConfig:
    max_batch: int  # largest batch the batcher forms
    max_delay_s: float  # how long the oldest waiting request may wait for more
    fixed_batch: bool = False  # static batching: every batch padded to max_batch, no queue window
    # an asynchronous engine may run two batches at once (Engine.inflight); the worker pool turns it off: on
    # 2 x H100 its pipelined workers held 3,445 QPS on one GPU against 22,001 in process (benchmarks/RESULTS.md)
    pipelined: bool = True


class Sut(Protocol):
    batch_sizes: Counter[int]  # batches formed per size (what this process saw)

    def start(self) -> Sut: ...

    def submit(self, requests: list[tuple[int, int]]) -> None: ...

    def stop(self) -> None: ...


class SampleLibrary:
    """The samples of one LoadGen test and their loading into the engine that serves them."""

    def __init__(self, samples: Feed) -> None:
        self.samples = samples
        self.count = feed_len(samples)
        self.performance_set: int | None = None  # how many samples LoadGen asked to have loaded

    def load_into(self, engine) -> None:
        """All samples into the engine (its host or device memory), before the SUT warms up on them."""
        engine.load_samples(self.samples)

    def construct(self, lg):
        """LoadGen's QSL over these samples (every sample is in the performance set)."""
        return lg.ConstructQSL(self.count, self.count, self._loaded, self._unloaded)

    def _loaded(self, indices: list[int]) -> None:  # LoadGen's load callback: the samples are in place already
        self.performance_set = len(indices)

    def _unloaded(self, indices: list[int]) -> None:  # they stay for the next test on the same engine
        pass
