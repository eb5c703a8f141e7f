"""Every way the runner can be stopped leaves a record: SIGTERM and SIGHUP to the real `scaleproof run` process end
the stage's kernel and its children, keep the run in failed/<id> with a manifest naming the signal and the stage,
and free the id; a runner killed by SIGKILL is recovered by the next run claimed in the same outputs folder."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import scaleproof
from scaleproof import run_folders
from tests import ROOT

LIB = str(Path(scaleproof.__file__).parents[1])  # the scaleproof under test, for its subprocesses

pytestmark = pytest.mark.slow


def start_run(outputs: Path, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([LIB, str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "scaleproof.cli", "run", "--params",
                             str(ROOT / "params" / "smoke.yaml"), "--outputs", str(outputs), "--run-id", run_id,
                             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wait_for_stage(runner: subprocess.Popen, stage: str, timeout_s: float = 600) -> tuple[list[psutil.Process], str]:
    """Read the runner's log until `stage` has started and its kernel is up; the run's processes then."""
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = runner.stdout.readline()
        if not line:
            break
        seen.append(line)
        if f"{stage} …" in line:
            time.sleep(4)  # the kernel is started and executing cells
            return psutil.Process(runner.pid).children(recursive=True), "".join(seen)
    runner.kill()
    raise AssertionError(f"{stage} never started:\n{''.join(seen)}")


@pytest.mark.parametrize(("signum", "stage"), [(signal.SIGTERM, "02_calibrate"), (signal.SIGTERM, "05_benchmark"),
                                               (signal.SIGHUP, "01_export")])
def test_a_termination_signal_to_the_runner_leaves_a_failed_run_and_no_process(tmp_path, signum, stage):
    runner = start_run(tmp_path, "stopped")
    children, _ = wait_for_stage(runner, stage)
    assert children, "the stage's kernel should be running"
    sent = time.monotonic()
    runner.send_signal(signum)
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 128 + signum, out
    assert time.monotonic() - sent < 30, "the runner should stop within seconds"
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [" ".join(p.cmdline())[:100] for p in alive]
    manifest = json.loads((tmp_path / "failed" / "stopped" / "manifest.json").read_text())
    name = signal.Signals(signum).name
    assert manifest["status"] == "failed"
    assert manifest["error"].startswith(f"stopped by {name} during stage {stage}"), manifest["error"]
    assert [s["stage"] for s in manifest["stages"] if s["status"] == "failed"] == [stage]
    assert not (tmp_path / ".staging" / "stopped").exists() and not (tmp_path / ".staging" / "stopped.pid").exists()
    assert f"stopped by {name}" in out and "Traceback" not in out
    run_folders.claim(tmp_path, "stopped")  # the id is free again


def test_a_runner_killed_by_sigkill_is_recovered_by_the_next_run(tmp_path):
    runner = start_run(tmp_path, "killed")
    children, _ = wait_for_stage(runner, "02_calibrate")
    runner.kill()
    runner.wait()
    psutil.wait_procs(children, timeout=20)  # the kernel notices its parent is gone
    assert (tmp_path / ".staging" / "killed").is_dir()  # what SIGKILL leaves: nobody could record it
    run_folders.claim(tmp_path, "next")  # the next run in this outputs folder
    manifest = json.loads((tmp_path / "failed" / "killed" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"].startswith(run_folders.STOPPED_UNKNOWN)
    assert f"pid {runner.pid}" in manifest["error"]
    assert "notebooks/01_export.ipynb" in manifest["artifacts"]
    assert not (tmp_path / ".staging" / "killed").exists()
    run_folders.claim(tmp_path, "killed")  # and its id is free
