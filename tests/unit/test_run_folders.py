"""A run's folder from start to end: the failure path survives a full disk, a target folder that appears while a
run is going keeps the finished run under a named folder, and `scaleproof clean` removes only dead runs' staging."""

import errno
import os
from pathlib import Path

from scaleproof import cli, run_folders


def test_a_target_that_appears_meanwhile_keeps_the_finished_run_and_names_it(tmp_path):
    staging, final = run_folders.claim(tmp_path, "r1")
    (staging / "manifest.json").write_text("{}")
    final.mkdir()
    (final / "someone-elses.txt").write_text("x")
    kept, clash = run_folders.publish(staging, final)
    assert kept == tmp_path / "r1-kept-1" and (kept / "manifest.json").is_file()
    assert "appeared while this run was going" in clash and f"scaleproof verify {kept}" in clash
    assert (final / "someone-elses.txt").is_file() and not (final / "manifest.json").exists()
    assert not staging.exists() and not run_folders.owner_file(staging).exists()


def test_an_empty_target_that_appears_is_not_silently_replaced(tmp_path):
    staging, final = run_folders.claim(tmp_path, "r2")
    final.mkdir()  # rename() would happily replace an empty folder: publish must not
    kept, clash = run_folders.publish(staging, final)
    assert clash and kept.name == "r2-kept-1" and final.is_dir()


def test_the_failure_path_survives_a_full_disk_and_keeps_the_run(tmp_path, monkeypatch):
    staging, _ = run_folders.claim(tmp_path, "r3")
    (staging / "notebooks").mkdir()

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folders.os, "rename", no_space)
    where, note = run_folders.keep_failed(staging, tmp_path, "r3")
    assert where == staging and "No space left on device" in note and staging.is_dir()
    monkeypatch.undo()
    assert run_folders.stale_staging(tmp_path) == []  # marked kept: clean never removes the only copy of its log
    assert "moving it to" in run_folders.kept_file(staging).read_text()


def test_a_failed_run_moves_to_failed(tmp_path):
    staging, _ = run_folders.claim(tmp_path, "r4")
    (staging / "x.txt").write_text("kept")
    where, note = run_folders.keep_failed(staging, tmp_path, "r4")
    assert where == tmp_path / "failed" / "r4" and note == "" and (where / "x.txt").read_text() == "kept"


def unused_pid() -> int:
    """A process id no process has now (what a run that died leaves in its owner file)."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text()) if Path("/proc/sys/kernel/pid_max").is_file() else 32768
    for pid in range(pid_max - 1, 1, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise RuntimeError("every process id is in use")


def test_clean_removes_only_staging_of_runs_that_are_gone(tmp_path, capsys):
    gone, _ = run_folders.claim(tmp_path, "killed")
    live, _ = run_folders.claim(tmp_path, "live")  # owned by this (living) process
    elsewhere, _ = run_folders.claim(tmp_path, "other-host")
    # the owner dies after the last claim (a later claim would move its folder to failed/ with a record)
    run_folders.owner_file(gone).write_text(str(unused_pid()))  # as a run whose process has exited
    orphan = tmp_path / ".staging" / "no-owner"
    orphan.mkdir()
    os.utime(orphan, (0, 0))  # old: not a run between mkdir and writing its owner file
    young = tmp_path / ".staging" / "just-claimed"
    young.mkdir()
    run_folders.owner_file(elsewhere).write_text("1@some-other-host")
    (tmp_path / "published").mkdir()
    assert cli.main(["clean", "--outputs", str(tmp_path), "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and gone.is_dir()
    assert cli.main(["clean", "--outputs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"removed {gone}" in out and f"removed {orphan}" in out and "2 staging folder(s)" in out
    assert not gone.exists() and not orphan.exists() and live.is_dir() and (tmp_path / "published").is_dir()
    assert young.is_dir() and elsewhere.is_dir()
    assert run_folders.owner_pid(live) == os.getpid()


def test_a_publish_that_fails_for_another_reason_keeps_the_run_in_staging_marked(tmp_path, monkeypatch):
    staging, final = run_folders.claim(tmp_path, "r5")

    def denied(*a, **k):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(run_folders.os, "rename", denied)
    where, why = run_folders.publish(staging, final)
    monkeypatch.undo()
    assert where == staging and "could not publish it" in why and "Permission denied" in why
    assert run_folders.stale_staging(tmp_path) == []  # a finished run is never cleaned away
