"""Engines that stand in for devices in tests: module-level factories, so worker processes can import them."""

import time

import numpy as np

from scaleproof.backends.base import Engine


class SleepEngine(Engine):
    """Service time 2 ms + 0.25 ms per sample spent asleep, as a GPU's kernels are to the host: two such
    engines in two processes serve twice what one does."""

    name, backend, precision, device = "sleep", "test", "fp32", "cpu"
    max_batch = 8

    def infer(self, x):
        n = len(next(iter(x.values())))
        time.sleep(0.002 + 0.00025 * n)
        return [np.zeros((n, 2), np.float32)]


def sleep_engine() -> SleepEngine:
    return SleepEngine()


def broken_engine() -> SleepEngine:
    raise RuntimeError("this engine cannot load")


class OverheadEngine(Engine):
    """2 ms per call plus 0.05 ms per sample: batching is nearly free, so a batcher capped at 2 serves about
    950 QPS and one allowed 16 about 5,700."""

    name, backend, precision, device = "overhead", "test", "fp32", "cpu"
    max_batch = 16

    def infer(self, x):
        n = len(next(iter(x.values())))
        time.sleep(0.002 + 0.00005 * n)
        return [np.zeros((n, 2), np.float32)]


class FailingEngine(SleepEngine):
    """Serves its warm-up, then fails on sample index 13 (a device lost mid-test)."""

    def infer(self, x):
        if 13 in np.asarray(next(iter(x.values())))[:, 0, 0, 0]:
            raise RuntimeError("device lost at sample 13")
        return super().infer(x)


def failing_engine() -> FailingEngine:
    return FailingEngine()


class NoLaunchEngine(SleepEngine):
    """Says it can run two batches at once, and fails if anything launches one: for a caller that must stay
    synchronous."""

    inflight = 2

    def launch_indices(self, idx):
        raise RuntimeError("a batch was launched asynchronously")


def no_launch_engine() -> NoLaunchEngine:
    return NoLaunchEngine()


class SlowModelEngine(Engine):
    """A slow model: 50 ms per call plus 2 ms per sample (a CPU transformer's order), so under a 200 ms bound its
    Server rates are tens of QPS, where LoadGen's early stopping needs far more queries than a 1 s run holds."""

    name, backend, precision, device = "slow-model", "test", "fp32", "cpu"
    max_batch = 8

    def infer(self, x):
        n = len(next(iter(x.values())))
        time.sleep(0.05 + 0.002 * n)
        return [np.zeros((n, 2), np.float32)]


class BehindEngine(SleepEngine):
    """Five times SleepEngine's service time (10 ms + 1.25 ms per sample): planted clearly behind it."""

    name = "behind"

    def infer(self, x):
        n = len(next(iter(x.values())))
        time.sleep(5 * (0.002 + 0.00025 * n))
        return [np.zeros((n, 2), np.float32)]
