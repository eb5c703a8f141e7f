"""make test's two pytest-xdist workers (`-n 2 --dist loadgroup`), registered by tests/conftest.py.

The serial suite used 43% of the two cores: it mostly waits on LoadGen runs, kernels and Ray. Two workers fill
that, on three rules:
- a worker is pinned to a core of its own: its kernels, engines and LoadGen runs inherit the mask and size their
  threads from it (backends.base.usable_threads), so a measurement shares no core with the other worker's;
- tests that share something run on one worker (xdist_group);
- a `whole_machine` test (two fleet members on one host, two CPU workers) runs alone, on every core.
"""

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# session fixtures that run a chain: every test that uses one runs on the worker that made it
SHARED_RUNS = ("published", "digits_run")
XDIST_DIR_ENV = "SCALEPROOF_XDIST_DIR"  # the controller's folder: groups.json, machine.lock, turnstile.lock


def whole_machine(item) -> bool:
    return item is not None and item.get_closest_marker("whole_machine") is not None


def xdist_group(item) -> str | None:
    """The group an item must share a worker with: an xdist_group mark's; nbval's cells (each notebook reads the one
    before it from outputs/dev); the users of a session run (one chain, not one per worker); the whole_machine
    tests (run back to back); the tests of a module with a module- or class-scoped fixture of its own. Anything
    else goes wherever a worker is free."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    if item.path.suffix == ".ipynb":  # nbval's cells, which have no fixtures
        return "nbval"
    for name in SHARED_RUNS:
        if name in item.fixturenames:
            return name
    if whole_machine(item):
        return "whole_machine"
    defs = getattr(item, "_fixtureinfo", None)
    for fixturedefs in (defs.name2fixturedefs.values() if defs else ()):
        if fixturedefs[-1].scope in ("module", "class") and fixturedefs[-1].baseid:  # ours, not a plugin's
            return item.nodeid.split("::")[0]
    return None


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        if os.environ.get(XDIST_DIR_ENV):
            Share.start(int(worker.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
        return
    if not getattr(config.option, "numprocesses", None):
        return  # serial: nothing to share
    if config.option.dist != "loadgroup":
        raise pytest.UsageError("the suite's xdist workers need --dist loadgroup (make test passes it): "
                                "tests/parallel.py groups the tests that must share a worker")
    folder = tempfile.mkdtemp(prefix="scaleproof-xdist-")
    os.environ[XDIST_DIR_ENV] = folder  # the workers start after this and inherit it
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Each worker collects the same items and writes the same {node id: group} map, atomically, for the
    controller's scheduler."""
    if not (os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(XDIST_DIR_ENV)):
        return
    path = Path(os.environ[XDIST_DIR_ENV]) / "groups.json"
    tmp = path.with_suffix(f".{os.environ['PYTEST_XDIST_WORKER']}")
    tmp.write_text(json.dumps({item.nodeid: g for item in items if (g := xdist_group(item)) is not None}))
    os.replace(tmp, path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's loadgroup, with the groups of xdist_group() as the workers collected them. xdist 3.8 passes
    xdist_group marks to its scheduler by appending "@group" to node ids, which pytest 9.2's structured ids ignore:
    marks have no effect there (pytest-dev/pytest-xdist#1386), so the groups travel in a file."""
    if config.option.dist != "loadgroup" or not os.environ.get(XDIST_DIR_ENV):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # first called once every worker has collected: the file is written
                self.groups = json.loads((Path(os.environ[XDIST_DIR_ENV]) / "groups.json").read_text())
            return self.groups.get(nodeid, nodeid)

    return GroupScheduling(config, log)


class Share:
    """A worker's share of the machine: its cores, and machine.lock, which each test holds shared and the
    whole_machine tests hold exclusive, from the first of a run of them to the last. turnstile.lock gives the
    exclusive request precedence: a worker passes through it before taking the shared lock, so it cannot keep the
    other waiting test after test."""
    all_cpus: list[int] = []
    own_cpus: list[int] = []
    machine = turnstile = None
    alone = False  # holding machine.lock exclusive, on every core

    @classmethod
    def start(cls, index: int, workers: int) -> None:
        if not hasattr(os, "sched_getaffinity"):
            return
        cls.all_cpus = sorted(os.sched_getaffinity(0))
        # index % workers: never an empty mask (make test allows no worker restart, whose gw<N> would be past them)
        cls.own_cpus = cls.all_cpus[index % workers::workers] if len(cls.all_cpus) >= workers else cls.all_cpus
        os.sched_setaffinity(0, cls.own_cpus)  # the thread that runs the tests, and all it starts
        folder = Path(os.environ[XDIST_DIR_ENV])
        cls.machine = open(folder / "machine.lock", "a")  # noqa: SIM115 - held for the worker's life
        cls.turnstile = open(folder / "turnstile.lock", "a")  # noqa: SIM115

    @classmethod
    def before(cls, item) -> None:
        if not whole_machine(item):
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
    def after(cls, nextitem) -> None:
        if cls.alone and whole_machine(nextitem):
            return  # the next whole_machine test goes on without letting the other worker in between
        cls.release()

    @classmethod
    def release(cls) -> None:
        if cls.alone:
            os.sched_setaffinity(0, cls.own_cpus)
            cls.alone = False
        fcntl.flock(cls.machine, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if Share.machine is None:  # not a worker of make test
        return (yield)
    Share.before(item)
    try:
        return (yield)
    finally:
        Share.after(nextitem)


def pytest_sessionfinish(session):
    """-x or --maxfail ends a worker before the next whole_machine test it was holding the lock for."""
    if Share.machine is not None:
        Share.release()
