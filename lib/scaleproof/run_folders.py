"""A run's folder from start to end: reserved under `outputs/.staging/<id>` with its owner's pid beside it,
published by one rename to `outputs/<id>`, or kept in `outputs/failed/<id>`; staging folders of runs whose
owner is gone are found and removed by `scaleproof clean`. The failure path must not fail itself: a full
disk still ends with the run kept somewhere named and its id free.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import ParamsError

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def owner_file(staging: Path) -> Path:
    """`<outputs>/.staging/<id>.pid`: beside the run folder, so it never becomes one of the run's artifacts."""
    return staging.parent / f"{staging.name}.pid"


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
    owner_file(staging).write_text(str(os.getpid()))
    return staging, final


def owner_pid(staging: Path) -> int | None:
    try:
        return int(owner_file(staging).read_text().strip())
    except (OSError, ValueError):
        return None


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
        except OSError:
            pass
    kept = next(final.with_name(f"{final.name}-kept-{i}") for i in range(1, 10_000)
                if not final.with_name(f"{final.name}-kept-{i}").exists())
    os.rename(staging, kept)
    release(staging)
    return kept, (f"{final} appeared while this run was going (another run or a copy); the finished run is kept "
                  f"as {kept}: check it with `scaleproof verify {kept}`")


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
    except OSError as e:
        release(staging)  # the id is free: claim() refuses only folders whose owner is alive, and clean removes it
        return staging, f" (could not move it to {failed_dir}: {e.strerror or e})"


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
        pid = owner_pid(d)
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
