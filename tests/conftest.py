import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests import ROOT

if str(ROOT) not in sys.path:  # `tests.user_models:...` must import in the tests and in papermill kernels
    sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Skip by capability, not by guess: gpu tests need CUDA, tensorrt tests need TensorRT too."""
    cuda = _has_cuda()
    trt = cuda and importlib.util.find_spec("tensorrt") is not None
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "tensorrt" in item.keywords and not trt:
            item.add_marker(pytest.mark.skip(reason="needs TensorRT and a CUDA GPU (import tensorrt failed)"))
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(XDIST_DIR_ENV):
        _write_groups(items)


# --- pytest-xdist: `make test` runs two workers (-n 2 --dist loadgroup), each on cores of its own; a test marked
# whole_machine runs alone, on every core ---

# session fixtures that run a chain: every test that uses one runs on the worker that made it
SHARED_RUNS = ("published", "digits_run")
XDIST_DIR_ENV = "SCALEPROOF_XDIST_DIR"  # the controller's folder: groups.json (node id -> group), machine.lock


def xdist_group(item) -> str | None:
    """The group an item must share a worker with: the whole_machine tests (one block, run alone), nbval's cells
    (each notebook reads the one before it from outputs/dev), the users of a session run (one chain, not one per
    worker), the tests of a module that has a module- or class-scoped fixture of its own. Anything else goes
    wherever a worker is free."""
    if _whole_machine(item):
        return "whole_machine"
    if item.path.suffix == ".ipynb":
        return "nbval"
    for name in SHARED_RUNS:
        if name in item.fixturenames:
            return name
    defs = getattr(item, "_fixtureinfo", None)
    for fixturedefs in (defs.name2fixturedefs.values() if defs else ()):
        if fixturedefs[-1].scope in ("module", "class") and fixturedefs[-1].baseid:  # ours, not a plugin's
            return item.path.stem
    return None


def _write_groups(items) -> None:
    """Each worker collects the same items and writes the same map, atomically."""
    path = Path(os.environ[XDIST_DIR_ENV]) / "groups.json"
    tmp = path.with_suffix(f".{os.environ['PYTEST_XDIST_WORKER']}")
    tmp.write_text(json.dumps({item.nodeid: g for item in items if (g := xdist_group(item)) is not None}))
    os.replace(tmp, path)


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        _Worker.start(int(worker.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    elif getattr(config.option, "dist", "no") == "loadgroup" and getattr(config.option, "numprocesses", None):
        folder = tempfile.mkdtemp(prefix="scaleproof-xdist-")
        os.environ[XDIST_DIR_ENV] = folder  # the workers start after this and inherit it
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def _whole_machine(item) -> bool:
    return item is not None and item.get_closest_marker("whole_machine") is not None


class _Worker:
    """An xdist worker's share of the machine. Its cores: its kernels, engines and LoadGen runs inherit the mask
    and size their threads from it (backends.base.usable_threads), so a measurement shares no core with the other
    worker's. machine.lock: each test holds it shared; the whole_machine tests (one xdist group) hold it exclusive
    from the first to the last, so they run alone, on every core. turnstile.lock gives the exclusive request
    precedence: a worker asking for the shared lock passes through it first, so it cannot keep the other waiting."""
    all_cpus: list[int] = []
    own_cpus: list[int] = []
    machine = turnstile = None
    alone = False  # holding machine.lock exclusive

    @classmethod
    def start(cls, index: int, workers: int) -> None:
        if not hasattr(os, "sched_getaffinity") or not os.environ.get(XDIST_DIR_ENV):
            return
        cls.all_cpus = sorted(os.sched_getaffinity(0))
        cls.own_cpus = cls.all_cpus[index::workers] if len(cls.all_cpus) >= workers else cls.all_cpus
        os.sched_setaffinity(0, cls.own_cpus)
        folder = Path(os.environ[XDIST_DIR_ENV])
        cls.machine = open(folder / "machine.lock", "a")  # noqa: SIM115 - held for the worker's life
        cls.turnstile = open(folder / "turnstile.lock", "a")  # noqa: SIM115

    @classmethod
    def before(cls, item) -> None:
        import fcntl

        if not _whole_machine(item):
            fcntl.flock(cls.turnstile, fcntl.LOCK_EX)
            fcntl.flock(cls.turnstile, fcntl.LOCK_UN)
            fcntl.flock(cls.machine, fcntl.LOCK_SH)
        elif not cls.alone:
            fcntl.flock(cls.turnstile, fcntl.LOCK_EX)  # the other worker's next test waits here
            fcntl.flock(cls.machine, fcntl.LOCK_EX)  # until its current test ends
            fcntl.flock(cls.turnstile, fcntl.LOCK_UN)
            os.sched_setaffinity(0, cls.all_cpus)
            cls.alone = True

    @classmethod
    def after(cls, item, nextitem) -> None:
        import fcntl

        if cls.alone and _whole_machine(nextitem):
            return  # the next whole_machine test goes on without letting the other worker in between
        if cls.alone:
            os.sched_setaffinity(0, cls.own_cpus)
            cls.alone = False
        fcntl.flock(cls.machine, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if _Worker.machine is None:  # not an xdist worker of make test
        return (yield)
    _Worker.before(item)
    try:
        return (yield)
    finally:
        _Worker.after(item, nextitem)


if importlib.util.find_spec("xdist") is not None:
    def pytest_xdist_make_scheduler(config, log):
        """xdist's loadgroup, with the groups of xdist_group() as the workers collected them. xdist 3.8 passes
        xdist_group marks to its scheduler by appending "@group" to node ids, which pytest 9.2's structured ids
        ignore: marks have no effect there (pytest-dev/pytest-xdist#1386), so the groups travel in a file."""
        if config.option.dist != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class GroupScheduling(LoadScopeScheduling):
            groups: dict[str, str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                if self.groups is None:  # first called once every worker has collected: the file is written
                    self.groups = json.loads((Path(os.environ[XDIST_DIR_ENV]) / "groups.json").read_text())
                return self.groups.get(nodeid, nodeid)

        return GroupScheduling(config, log)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """Export + calibrate + build + validate of the digits model, once per session, through lib."""
    from scaleproof.config import Params
    from scaleproof.stages import build, calibrate, export, validate

    params = Params(run_dir=str(tmp_path_factory.mktemp("digits")), calib_samples=128,
                    calib_compare=["minmax", "entropy", "percentile"])
    export.run(params)
    calibrate.run(params)
    build.run(params)
    validate.run(params)
    return params


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """One published run of the smoke profile through the runner (papermill), shared by the slow tests."""
    from scaleproof.config import Params
    from scaleproof.pipeline import run_chain

    outcome = run_chain(Params.from_yaml(ROOT / "params" / "smoke.yaml"), run_id="published",
                        outputs=tmp_path_factory.mktemp("runs"), progress=False)
    assert outcome.ok, outcome.error
    return outcome.run_dir
