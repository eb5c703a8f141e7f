"""One logger for the package: `scaleproof`, with a child per module (`logging.getLogger(__name__)`).

Progress is INFO, what a user must act on WARNING, failures ERROR. The console handler prints
`[scaleproof] message` on whatever `sys.stdout` is when the record is emitted, so a stage kernel's output
lands in the run's `logs/<stage>.stdout.log` (papermill captures it) and tests can read it. A run also
writes `logs/run.log` (time, level, module, message) from the runner: `run_log` adds that file for the
duration of the run. `SCALEPROOF_LOG_LEVEL=WARNING` quiets progress; `DEBUG` shows more.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = logging.getLogger("scaleproof")


class _CurrentStdout(logging.Handler):
    """Writes to the `sys.stdout` of the moment (a redirected or captured one included)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must not raise into the caller
            self.handleError(record)


def _configure() -> None:
    if any(isinstance(h, _CurrentStdout) for h in ROOT.handlers):
        return
    handler = _CurrentStdout()
    handler.setFormatter(logging.Formatter("[scaleproof] %(message)s"))
    ROOT.addHandler(handler)
    level = os.environ.get("SCALEPROOF_LOG_LEVEL", "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        sys.stderr.write(f"[scaleproof] SCALEPROOF_LOG_LEVEL={level!r} is no logging level (DEBUG, INFO, WARNING, "
                         "ERROR); using INFO\n")
        level = "INFO"
    ROOT.setLevel(level)
    ROOT.propagate = False  # a user's root logging configuration does not print every line twice


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Everything the package logs in this process, also into `path`, until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ROOT.addHandler(handler)
    try:
        yield
    finally:
        ROOT.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def quiet_console(level: int = logging.WARNING) -> Iterator[None]:
    """Only records at `level` and above on the console inside the block (a run log still gets everything)."""
    handlers = [h for h in ROOT.handlers if isinstance(h, _CurrentStdout)]
    before = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(level)
    try:
        yield
    finally:
        for h, old in zip(handlers, before, strict=True):
            h.setLevel(old)


_configure()
