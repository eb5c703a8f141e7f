"""A run's folder from start to end: reserved under `outputs/.staging/<id>` with its owner's pid beside it,
published by one rename to `outputs/<id>`, or kept in `outputs/failed/<id>` (`<id>.2` ... for a later failure
of the same id: no failure record is ever deleted). A staging folder whose owner on this host died without a
word (SIGKILL) is moved to `failed/` by the next run claimed in that outputs folder; `scaleproof clean` removes
the staging folders of owners it cannot judge. The failure path must not fail itself: a full
disk still ends with the run kept somewhere named and its id free.
"""

from __future__ import annotations

import contextlib
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
    recover_dead(outputs)  # a run killed without a trace (SIGKILL) is recorded as failed and frees its id
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


def failed_folder(outputs: Path, run_id: str) -> Path:
    """`outputs/failed/<id>`, or `<id>.2`, `<id>.3` ... when an earlier failure of that id is kept there: a failed
    run's record is never replaced by a later one."""
    first = outputs / "failed" / run_id
    if not first.exists():
        return first
    return next(p for i in range(2, 1_000_000) if not (p := first.with_name(f"{run_id}.{i}")).exists())


def keep_failed(staging: Path, outputs: Path, run_id: str) -> tuple[Path, str]:
    """Move a failed run to `outputs/failed/<id>` (`<id>.N` if that is taken: nothing earlier is deleted); where
    even that fails (a full disk, permissions), leave it in staging and say where it is. Returns the folder and
    a note; never raises."""
    failed_dir = outputs / "failed" / run_id
    try:
        failed_dir.parent.mkdir(parents=True, exist_ok=True)
        failed_dir = failed_folder(outputs, run_id)
        os.rename(staging, failed_dir)  # onto an existing folder this fails rather than merging
        release(staging)
        earlier = failed_dir.name != run_id
        return failed_dir, (f" (an earlier failure of this id is kept in {outputs / 'failed' / run_id})"
                            if earlier else "")
    except OSError as e:  # left where it is, marked kept: `clean` will not remove the only copy of the log
        keep_in_staging(staging, f"failed run; moving it to {failed_dir} failed: {e.strerror or e}")
        release(staging)
        return staging, f" (could not move it to {failed_dir}: {e.strerror or e}; move it by hand, then its id is free)"


STOPPED_UNKNOWN = "stopped, cause unknown"


def recover_dead(outputs: Path) -> list[Path]:
    """Staging folders whose runner on this host is gone without recording how (SIGKILL, a power cut): each moved
    to `failed/` with a manifest that says "stopped, cause unknown", so the record is kept and the id is free.
    Called by every command that claims a run id under `outputs`. Returns where they went."""
    import datetime as dt
    import json

    from .provenance import sha256_file

    moved = []
    for s in stale_staging(outputs):
        if s.owner is None:  # no owner recorded on this host: `clean` decides, as before
            continue
        run = s.path
        artifacts = {f.relative_to(run).as_posix(): {"sha256": sha256_file(f), "bytes": f.stat().st_size}
                     for f in sorted(run.rglob("*")) if f.is_file() and not f.is_symlink()
                     and f.name != "manifest.json"}
        manifest = {"manifest_format": 1, "run_id": run.name, "status": "failed",
                    "error": f"{STOPPED_UNKNOWN}: its runner (pid {s.owner}) ended without recording how (SIGKILL, "
                             "the out-of-memory killer or a power cut); found "
                             f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
                    "stages": [], "artifacts": artifacts}
        try:
            (run / "manifest.json").write_text(json.dumps(manifest, indent=1))
        except OSError:
            pass  # moved all the same: the folder is the record
        where, _ = keep_failed(run, outputs, run.name)
        moved.append(where)
    return moved


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


def check_writable(outputs: Path) -> None:
    """Refuse, before any work, an outputs folder that is a file or cannot be written (read-only, no permission).
    Leaves nothing behind: folders it had to make for the check are removed again."""
    if outputs.exists() and not outputs.is_dir():
        raise ParamsError(f"--outputs {outputs} is a file, not a folder: name a folder for the runs")
    made = [p for p in [outputs, *outputs.parents] if not p.exists()]
    try:
        outputs.mkdir(parents=True, exist_ok=True)
        probe = outputs / f".write-check-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ParamsError(f"--outputs {outputs} cannot be written ({e.strerror or e}): name a folder you can write "
                          "to, or fix its permissions") from None
    finally:
        for p in made:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
