"""`kill -9` of the runner leaves no process behind: isolated children, multi-device workers and
multiprocessing's resource tracker end with their parent instead of blocking on a pipe forever."""

import subprocess
import sys
import time

import psutil
import pytest

from tests import ROOT

PARENT = """
import time
import numpy as np
from scaleproof.bench.multi_gpu import WorkerPool
from scaleproof.isolate import IsolatedWorker
from tests.stand_in_engines import sleep_engine

pool = WorkerPool(sleep_engine, {"input": np.zeros((8, 2), np.float32)}, ["cpu:0"], 8, 0.002)
worker = IsolatedWorker(what="a long call")
print("ready", flush=True)
worker.call(time.sleep, 600)  # the runner is killed in the middle of this
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_the_parent_ends_every_child():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        proc = psutil.Process(parent.pid)
        deadline = time.monotonic() + 30
        while len(proc.children(recursive=True)) < 3 and time.monotonic() < deadline:  # tracker, pool worker, child
            time.sleep(0.2)
        children = proc.children(recursive=True)
        assert len(children) >= 3, [c.cmdline()[-1][:60] for c in children]
    except BaseException:
        parent.kill()
        raise
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, [f"{p.pid}: {' '.join(p.cmdline())[:100]}" for p in alive]
