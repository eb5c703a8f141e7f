"""Python's cyclic garbage collector kept out of measured windows.

After `torch.compile` a process holds millions of Python objects (FX graphs, guards, sympy
expressions); a full collection walks all of them and stalls every harness thread for tens of
milliseconds. In a one-second Server run at a 15 ms P99 SLA a single such stall makes the run
INVALID at any rate, so the peak search wanders down (seen on the H100, 2026-11-26: the same engine
INVALID at 6,213 QPS in one search and VALID at 18,492 in another). MLPerf submitters avoid this the
same way: objects alive before the run are frozen (never scanned again) and collection is paused
while LoadGen runs; reference counting still frees everything that is not in a cycle.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

DESCRIPTION = "gc.freeze() and gc.disable() while a measurement runs (collected before; restored after)"


def freeze_and_disable() -> None:
    """Collect once, move every live object out of the collector's reach, and stop collecting."""
    gc.collect()
    gc.freeze()
    gc.disable()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No garbage collection inside the block; the collector's state is restored after it."""
    was_enabled, was_frozen = gc.isenabled(), gc.get_freeze_count() > 0
    freeze_and_disable()
    try:
        yield
    finally:
        if not was_frozen:  # a freeze made before the block (a worker's) stays; gc cannot undo only ours
            gc.unfreeze()
        if was_enabled:
            gc.enable()
