"""A run's folder from start to end: reserved under `outputs/.staging/<id>` with its owner's pid beside it,
published by one rename to `outputs/<id>`, or kept in `outputs/failed/<id>`; staging folders of runs whose
owner is gone are found and removed by `scaleproof clean`. The failure path must not fail itself: a full
disk still ends with the run kept somewhere named and its id free.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ParamsError

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def owner_file(staging: Path) -> Path:
    """`<outputs>/.staging/<id>.pid`: beside the run folder, so it never becomes one of the run's artifacts."""
    return staging.parent / f"{staging.name}.pid"


def kept_file(staging: Path) -> Path:
    """`<id>.kept`: a run left in staging on purpose (it could not be moved); `clean` never removes it."""
    return staging.parent / f"{staging.name}.kept"


YOUNG_S = 60.0  # a staging folder without an owner file this young may be a run between mkdir and writing its pid


def keep_in_staging(staging: Path, why: str) -> None:
    try:
        kept_file(staging).write_text(why)
    except OSError:
        pass  # the disk is full: the folder keeps its owner file, and clean sees a dead owner; said in the log


def claim(outputs: Path, run_id: str) -> tuple[Path, Path]:
    """Reserve the run id: refuse a published run of that id and a concurrent run writing it."""
    if not RUN_ID_RE.match(run_id):
        raise ParamsError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-' (at most 128)")
    final = outputs / run_id
    if final.exists():
        raise ParamsError(f"{final} already exists; choose another --run-id (published runs are never overwritten)")
    staging = outputs / ".staging" / run_id
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.mkdir()  # atomic: of two runs with one id, exactly one gets here
    except FileExistsError:
        owner = owner_pid(staging)
        alive = owner is not None and pid_alive(owner)
        raise ParamsError(f"another run is writing {staging}" + (f" (pid {owner})" if alive else
                          " (its owner is no longer running: `scaleproof clean` removes such folders)")
                          + "; choose another --run-id") from None
    owner_file(staging).write_text(f"{os.getpid()}@{socket.gethostname()}")
    return staging, final


def owner_pid(staging: Path) -> int | None:
    """The owner's pid, if it ran on this host (a pid on another host sharing outputs/ says nothing here)."""
    try:
        pid, _, host = owner_file(staging).read_text().strip().partition("@")
        return int(pid) if not host or host == socket.gethostname() else None
    except (OSError, ValueError):
        return None


def owner_elsewhere(staging: Path) -> bool:
    try:
        host = owner_file(staging).read_text().strip().partition("@")[2]
    except OSError:
        return False
    return bool(host) and host != socket.gethostname()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release(staging: Path) -> None:
    owner_file(staging).unlink(missing_ok=True)


def publish(staging: Path, final: Path) -> tuple[Path, str | None]:
    """Move a finished run to `final`. If `final` appeared meanwhile, keep the run beside it under a free name
    and say why (the second value): the finished run is never merged into another folder, nor lost."""
    if not final.exists():
        try:
            os.rename(staging, final)  # onto a non-empty folder this fails rather than merging
            release(staging)
            return final, None
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                return stay(staging, f"could not publish it to {final} ({e.strerror or e})")
    kept = next(final.with_name(f"{final.name}-kept-{i}") for i in range(1, 10_000)
                if not final.with_name(f"{final.name}-kept-{i}").exists())
    try:
        os.rename(staging, kept)
    except OSError as e:
        return stay(staging, f"{final} appeared while this run was going and moving it to {kept} failed "
                             f"({e.strerror or e})")
    release(staging)
    return kept, (f"{final} appeared while this run was going (another run or a copy); the finished run is kept "
                  f"as {kept}: check it with `scaleproof verify {kept}`")


def stay(staging: Path, why: str) -> tuple[Path, str]:
    """A finished run that could not be moved: left in staging, marked so that `clean` never removes it."""
    keep_in_staging(staging, why)
    release(staging)
    return staging, f"{why}; the finished run stays in {staging}: check it with `scaleproof verify {staging}`"


def keep_failed(staging: Path, outputs: Path, run_id: str) -> tuple[Path, str]:
    """Move a failed run to `outputs/failed/<id>`; where even that fails (a full disk, permissions), leave it in
    staging and say where it is. Returns the folder and a note; never raises."""
    failed_dir = outputs / "failed" / run_id
    try:
        failed_dir.parent.mkdir(parents=True, exist_ok=True)
        if failed_dir.exists():
            shutil.rmtree(failed_dir)
        os.rename(staging, failed_dir)
        release(staging)
        return failed_dir, ""
    except OSError as e:  # left where it is, marked kept: `clean` will not remove the only copy of the log
        keep_in_staging(staging, f"failed run; moving it to {failed_dir} failed: {e.strerror or e}")
        release(staging)
        return staging, f" (could not move it to {failed_dir}: {e.strerror or e}; move it by hand, then its id is free)"


@dataclass
class Stale:
    path: Path
    owner: int | None


def stale_staging(outputs: Path) -> list[Stale]:
    """Staging folders whose owner process is gone (or unrecorded): left by a killed or crashed run."""
    root = outputs / ".staging"
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if kept_file(d).exists() or owner_elsewhere(d):
            continue  # kept on purpose, or owned by a process on another host: not ours to judge
        pid = owner_pid(d)
        if pid is None and not owner_file(d).exists() and time.time() - d.stat().st_mtime < YOUNG_S:
            continue  # just claimed: its owner file may not be written yet
        if pid is None or not pid_alive(pid):
            out.append(Stale(d, pid))
    return out


def clean(outputs: Path, dry_run: bool = False) -> list[Stale]:
    """Remove the staging folders of runs that are no longer alive; live and published runs are never touched."""
    found = stale_staging(outputs)
    if not dry_run:
        for s in found:
            shutil.rmtree(s.path, ignore_errors=True)
            release(s.path)
    return found
