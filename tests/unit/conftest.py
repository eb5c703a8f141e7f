"""tests/unit: no Jupyter kernel, LoadGen, Ray or spawned process; the whole folder runs in well under a minute
(`make test-fast`). A test here that starts any of them fails, naming what it started and where it belongs."""

import multiprocessing.process
import subprocess

import pytest

MOVE = "it belongs in tests/integration (processes, LoadGen) or tests/e2e (papermill, Ray, nbval, a browser)"


def _refuse(what: str):
    def refused(*args, **kwargs):
        raise AssertionError(f"a unit test must not {what}: {MOVE}")
    return refused


@pytest.fixture(autouse=True)
def unit_boundary(monkeypatch):
    from scaleproof import hardware

    hardware.cpu_info()  # cached for the session; platform.processor() runs `uname -p` the first time
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _refuse("start a process (multiprocessing)"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a process (subprocess)"))
    for module, name, what in (("mlperf_loadgen", "StartTestWithLogSettings", "run MLPerf LoadGen"),
                               ("mlperf_loadgen", "StartTest", "run MLPerf LoadGen"),
                               ("papermill", "execute_notebook", "execute a notebook"),
                               ("ray", "init", "start or join a Ray cluster")):
        mod = pytest.importorskip(module) if module == "mlperf_loadgen" else __import__(module)
        monkeypatch.setattr(mod, name, _refuse(what))


# session fixtures of tests/conftest.py that run the chain (papermill) or spawn stage workers: set up before any
# function-scoped guard, so they are refused by name
HEAVY_FIXTURES = {"published": "runs the smoke chain with papermill", "digits_run": "runs stages that spawn workers"}


def pytest_runtest_setup(item):
    for name in set(item.fixturenames) & set(HEAVY_FIXTURES):
        pytest.fail(f"a unit test must not use the {name} fixture ({HEAVY_FIXTURES[name]}): {MOVE}", pytrace=False)
