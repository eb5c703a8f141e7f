"""The termination signals a runner is sent (SIGTERM from Kubernetes, systemd, CI cancellation and `timeout`;
SIGHUP when its terminal goes; SIGINT from Ctrl-C) turned into one exception, so the run they stop ends the way a
failed stage does: its kernel ended, the folder kept in `failed/<id>` with a manifest naming the signal."""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class RunStopped(KeyboardInterrupt):
    """A termination signal arrived. A KeyboardInterrupt, so every `except Exception` lets it through and papermill
    ends the stage's kernel as it does for Ctrl-C."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process the signal ended: 143 for SIGTERM


LAST: list[RunStopped] = []  # the last stop seen: code in between (Ray's) may re-raise it as a bare KeyboardInterrupt


def stop_of(exc: BaseException) -> RunStopped | None:
    """The signal behind a KeyboardInterrupt: the exception itself, or the last one our handler raised."""
    if isinstance(exc, RunStopped):
        return exc
    return LAST[-1] if isinstance(exc, KeyboardInterrupt) and LAST else None


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, the first termination signal raises RunStopped; later ones are ignored so that recording the
    stopped run is not itself interrupted. The previous handlers come back on leaving. A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopped: list[int] = []
    LAST.clear()

    def handler(signum, frame):
        if stopped:
            return
        stopped.append(signum)
        LAST[:] = [RunStopped(signum)]
        raise LAST[0]

    before = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def stopping_on_signals(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn` run inside stop_on_signals()."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
        with stop_on_signals():
            return fn(*args, **kwargs)

    return wrapped
