"""One writer at a time for a shared record (a repository's deploy.json, the run ledger): an exclusive `flock` on
`<record>.lock` beside it, held for the whole read-modify-write. A second writer waits for the first, and is
refused, naming the holder, if that takes longer than `wait_s`. The lock goes with the process that held it (a
killed writer never leaves the record locked)."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ScaleproofError

WAIT_S = 600.0  # a deploy of a large model (TorchScript traced per engine) may take minutes


class RecordBusy(ScaleproofError):
    """Another process holds the record's lock for longer than this one would wait."""


def lock_file(record: Path) -> Path:
    return record.with_name(record.name + ".lock")


@contextmanager
def locked(record: str | Path, wait_s: float | None = None) -> Iterator[None]:
    wait_s = WAIT_S if wait_s is None else wait_s
    record = Path(record)
    record.parent.mkdir(parents=True, exist_ok=True)
    path = lock_file(record)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = path.read_text(errors="replace").strip() or "another process"
                    raise RecordBusy(f"{record} is being written by {holder} (lock {path}, waited {wait_s:.0f} s); "
                                     "try again when it has finished") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
