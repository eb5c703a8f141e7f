"""One writer at a time for a shared record: a second writer (another process) waits, and is refused naming the
holder when it would wait too long; a killed holder never leaves the record locked. The ledger takes the lock."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import scaleproof
from scaleproof import record_lock
from scaleproof.ledger.store import add_runs
from scaleproof.record_lock import RecordBusy, locked

HOLD = """
import sys, time
from scaleproof.record_lock import locked
with locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(record, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(scaleproof.__file__).parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(record), str(seconds)], stdout=subprocess.PIPE,
                              text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_waits_for_the_first(tmp_path):
    record = tmp_path / "deploy.json"
    holder = hold(record, 2)
    t0 = time.monotonic()
    with locked(record, wait_s=60):
        waited = time.monotonic() - t0
    holder.wait()
    assert waited > 1.0


def test_a_writer_that_would_wait_too_long_is_refused_naming_the_holder(tmp_path):
    record = tmp_path / "deploy.json"
    holder = hold(record, 60)
    try:
        with pytest.raises(RecordBusy, match=rf"{record} is being written by pid {holder.pid} on "):
            with locked(record, wait_s=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locked(record, wait_s=5):  # the killed holder's lock went with it
        pass


def test_the_ledger_is_written_under_the_lock(tmp_path, monkeypatch):
    ledger = tmp_path / "ledger.sqlite"
    holder = hold(ledger, 60)
    monkeypatch.setattr(record_lock, "WAIT_S", 0.5)
    try:
        with pytest.raises(RecordBusy, match="ledger.sqlite is being written by"):
            add_runs([tmp_path / "no-run-here"], ledger)
    finally:
        holder.kill()
        holder.wait()
    assert add_runs([tmp_path / "no-run-here"], ledger).refused  # free again: refused for its own reason
