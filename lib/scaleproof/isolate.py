"""Run third-party native code (ONNX Runtime, TensorRT, ...) in a child process, so that a segfault or
abort while loading, judging or timing one candidate fails that candidate instead of killing the kernel.

Children are started with "spawn" (a forked copy of a kernel that has CUDA or runtime threads up can
deadlock), so the functions and their arguments must be picklable: module-level functions of an
importable module, not ones defined in a notebook. Children are daemon processes, ended with their
parent; a daemon cannot start processes of its own (multiprocessing pools, DataLoader workers).
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import pickle
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

TRACE_LINES = 20


class ChildCrashed(Exception):
    """The child died (signal, exit without a result, or killed after `timeout_s`) before answering."""

    def __init__(self, message: str, *, signal_name: str | None = None, exitcode: int | None = None,
                 what: str = "", versions: dict | None = None, fault_trace: str = "", timed_out: bool = False):
        super().__init__(message)
        self.signal_name, self.exitcode, self.timed_out = signal_name, exitcode, timed_out
        self.what, self.versions, self.fault_trace = what, dict(versions or {}), fault_trace


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a `kill -9` of the runner included), so no
    worker stays blocked on a pipe or queue forever. Elsewhere a no-op: the parent's pipe closing still ends us."""
    import ctypes
    import sys

    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _serve(conn, fault_path: str, parent_pid: int | None = None) -> None:
    """The child: enable faulthandler before anything is unpickled (unpickling imports the runtime, which
    may itself crash), then answer calls until the parent closes the pipe."""
    die_with_parent(parent_pid)
    fault = open(fault_path, "w")  # noqa: SIM115 -- must stay open for as long as the process lives
    faulthandler.enable(file=fault, all_threads=True)
    if hasattr(signal, "SIGUSR1"):  # the parent asks for a traceback before killing a child that timed out
        faulthandler.register(signal.SIGUSR1, file=fault, all_threads=True)
    setup, state, ready = None, None, False
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            msg = pickle.loads(data)
            if msg is None:
                return
            if msg[0] == "setup":  # kept pickled: unpickling it is part of the first call, errors included
                setup = msg[1]
                continue
            _, fn, args, kwargs = msg
            if not ready:
                setup_fn, setup_args = pickle.loads(setup)
                state, ready = (setup_fn(*setup_args) if setup_fn else None), True
            result = fn(state, *args, **kwargs) if setup_fn else fn(*args, **kwargs)
            conn.send(("ok", result))  # pickles before writing: an unpicklable result leaves the pipe clean
        except BaseException as e:  # noqa: BLE001 -- everything goes back to the caller
            try:
                exc = pickle.dumps(e)
            except Exception:
                exc = None
            conn.send(("err", exc, f"{type(e).__name__}: {e}", traceback.format_exc()))


def fault_summary(text: str, n: int = TRACE_LINES) -> str:
    """The telling part of a faulthandler log: its last "Fatal Python error" line and the innermost `n`
    frames of the thread that crashed (frames come most recent first; the other threads are noise)."""
    text = text[max(text.rfind("Fatal Python error"), 0):].strip()
    blocks = [b.splitlines() for b in text.split("\n\n") if b.strip()]
    keep = [b for b in blocks if b[0].startswith("Fatal Python error")]
    for b in blocks:
        if b[0].startswith(("Current thread", "Stack")):
            # frames past the first `<module>` (a notebook cell) are the kernel's machinery driving it
            end = next((i + 1 for i, x in enumerate(b) if x.endswith(" in <module>")), len(b))
            keep.append(b[:min(end, n)] + ["  ..."] * (end > n))
    lines = [x for b in keep for x in b] or text.splitlines()[-n:]
    return "\n".join(x if len(x) <= 300 else x[:300] + " ..." for x in lines)


def read_fault_log(path: str | os.PathLike | None) -> str:
    try:
        with open(path, errors="replace") as f:
            return fault_summary(f.read())
    except (OSError, TypeError):
        return ""


class IsolatedWorker:
    """A child that runs `state = setup_fn(*setup_args)` once (on the first call) and then
    `fn(state, *args, **kwargs)` per call, so large arguments cross the process boundary once.
    After a crash the next call starts a fresh child, running setup again. Not thread-safe."""

    def __init__(self, setup_fn: Callable | None = None, *setup_args: Any, what: str = "",
                 versions: dict | None = None, timeout_s: float | None = None):
        self.setup_fn, self.setup_args = setup_fn, setup_args
        self.what, self.versions, self.timeout_s = what, dict(versions or {}), timeout_s
        self._proc = self._conn = self._fault_path = None

    def __enter__(self) -> IsolatedWorker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _start(self) -> None:
        setup = pickle.dumps((self.setup_fn, self.setup_args))  # unpicklable: fails here, before any start
        ctx = mp.get_context("spawn")
        fd, self._fault_path = tempfile.mkstemp(prefix="scaleproof-fault-", suffix=".log")
        os.close(fd)
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self._fault_path, os.getpid()), daemon=True,
                                 name=f"scaleproof-isolated {self.what}".strip())
        self._proc.start()
        child.close()  # so that the child's death reads as EOF here
        self._conn.send(("setup", setup))

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        try:
            if self._proc is None:
                self._start()
            self._conn.send(("call", fn, args, kwargs))
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not wait([self._conn, self._proc.sentinel], left):
                raise self._crashed(timed_out=True)
            msg = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            raise self._crashed() from None
        except BaseException:  # e.g. Ctrl-C mid-call: a late answer must not be read as the next call's
            self._discard()
            raise
        if msg[0] == "ok":
            return msg[1]
        _, exc, summary, tb = msg
        try:
            err = pickle.loads(exc)
        except Exception:  # unpicklable, or a type that cannot be rebuilt from its args here
            raise RuntimeError(f"{summary} (in an isolated child)\n{tb}") from None
        err.add_note(f"raised in an isolated child process:\n{tb}")
        raise err

    def _label(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.versions.items()) or "the isolated child process"

    def _crashed(self, timed_out: bool = False) -> ChildCrashed:
        proc, while_ = self._proc, f" while {self.what}" if self.what else ""
        if timed_out:
            if hasattr(signal, "SIGUSR1"):  # where it hung is the useful part of the trace
                os.kill(proc.pid, signal.SIGUSR1)
                for _ in range(20):
                    if os.path.getsize(self._fault_path):
                        break
                    time.sleep(0.05)
            proc.kill()
        proc.join(10)
        trace, code = read_fault_log(self._fault_path), proc.exitcode
        self._discard()
        sig = None
        if timed_out:
            msg = f"{self._label()} timed out after {self.timeout_s:g} s{while_} (killed)"
        elif code is not None and code < 0:
            sig = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            msg = f"{self._label()} crashed ({sig}){while_}"
        else:
            msg = f"{self._label()} exited with code {code} without a result{while_}"
        if trace:
            msg += f"\nits faulthandler trace:\n{trace}"
        return ChildCrashed(msg, signal_name=sig, exitcode=code, what=self.what, versions=self.versions,
                            fault_trace=trace, timed_out=timed_out)

    def _discard(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        if self._fault_path:
            try:
                os.unlink(self._fault_path)
            except OSError:
                pass
        self._proc = self._conn = self._fault_path = None

    def close(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(5)
            except OSError:
                pass
        self._discard()


def call_isolated(fn: Callable, *args: Any, what: str = "", versions: dict | None = None,
                  timeout_s: float | None = None, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` in a fresh child process: its return value, or its exception re-raised here,
    or ChildCrashed if the child died or ran past `timeout_s` (which includes the child's start-up)."""
    with IsolatedWorker(what=what, versions=versions, timeout_s=timeout_s) as worker:
        return worker.call(fn, *args, **kwargs)
