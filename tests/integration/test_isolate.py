"""Native crashes in a child process stay there: the caller gets ChildCrashed and lives on."""

import ctypes
import os
import signal
import time

import numpy as np
import pytest

from scaleproof.isolate import ChildCrashed, IsolatedWorker, call_isolated

ORT = {"onnxruntime": "1.30.0"}


# run in the child: module-level, so that "spawn" can import them from tests.integration.test_isolate
def segfault():
    ctypes.string_at(0)


def scaled(n, factor=1.0):
    return np.arange(n, dtype=np.float32) * factor


def raise_value_error():
    raise ValueError("bad candidate")


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a} {b}")


def raise_unpicklable():
    raise NeedsTwoArgs(1, 2)


def load(n):
    return {"weights": np.ones(n), "pid": os.getpid()}


def judge(state, x, crash=False):
    if crash:
        os.kill(os.getpid(), signal.SIGSEGV)
    return float(state["weights"].sum()) * x, state["pid"]


def sleep_forever():
    time.sleep(600)


def test_a_segfault_is_contained_and_named(tmp_path, monkeypatch):
    stage_log = tmp_path / "stage.fault.log"  # as if called from a stage kernel the runner watches
    monkeypatch.setenv("SCALEPROOF_FAULT_LOG", str(stage_log))
    with pytest.raises(ChildCrashed) as info:
        call_isolated(segfault, what="judging model.fp16.onnx", versions=ORT)
    e = info.value
    assert e.signal_name == "SIGSEGV" and e.exitcode == -signal.SIGSEGV and e.versions == ORT
    assert str(e).startswith("onnxruntime 1.30.0 crashed (SIGSEGV) while judging model.fp16.onnx")
    assert "Segmentation fault" in e.fault_trace and "segfault" in e.fault_trace  # the child's Python frames
    assert call_isolated(scaled, 3).tolist() == [0.0, 1.0, 2.0]  # the caller lives on
    assert stage_log.read_text() == ""  # a contained crash is not the stage's crash


def test_results_and_exceptions_cross_back():
    out = call_isolated(scaled, 1_000_000, factor=2.0)  # 4 MB: more than a pipe buffer
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out[-1] == 1_999_998.0
    with pytest.raises(ValueError, match="bad candidate") as info:
        call_isolated(raise_value_error)
    assert any("raise_value_error" in n for n in info.value.__notes__)
    with pytest.raises(RuntimeError, match="NeedsTwoArgs: 1 2"):  # cannot be rebuilt here: its text is kept
        call_isolated(raise_unpicklable)


def test_worker_sets_up_once_and_restarts_after_a_crash():
    with IsolatedWorker(load, 10, what="timing model.onnx", versions=ORT) as worker:
        total, pid = worker.call(judge, 2.0)
        assert total == 20.0 and pid != os.getpid()
        assert worker.call(judge, 3.0) == (30.0, pid)  # same child, state kept
        with pytest.raises(ChildCrashed, match=r"crashed \(SIGSEGV\) while timing model.onnx"):
            worker.call(judge, 1.0, crash=True)
        total, new_pid = worker.call(judge, 1.0)  # a fresh child, setup run again
        assert total == 10.0 and new_pid != pid


def test_a_child_that_hangs_is_killed_after_the_timeout():
    t0 = time.monotonic()
    with pytest.raises(ChildCrashed, match="timed out after 4 s while loading x") as info:
        call_isolated(sleep_forever, what="loading x", timeout_s=4)
    assert time.monotonic() - t0 < 10 and info.value.timed_out
    assert "sleep_forever" in info.value.fault_trace  # where it hung
