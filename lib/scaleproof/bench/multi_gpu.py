"""One engine per device, one LoadGen run over all of them: how per-GPU throughput scales on a host.

The cost model multiplies a per-GPU peak by the GPUs of an instance; on a real host the shared CPU,
PCIe and host memory can make eight GPUs deliver less than eight times one. `WorkerPool` starts one
process per device (`CUDA_VISIBLE_DEVICES` set before the engine loads; on a CPU machine, CPU workers
with a share of the cores stand in), each with its own engine and dynamic batcher. LoadGen's queries
go to the worker with the fewest outstanding requests; completions come back through one queue.
`measure_scaling` finds the Server peak with 1 device and with all of them, in one call, and
reports scaling factor = peak(N) / (N x peak(1)).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..io_spec import Feed, feed_len
from . import gc_pause
from .capacity import confirm, confirm_duration_s, repeat_start, upper_bound
from .loadgen import GIL_SWITCH_INTERVAL_S, LoadgenSettings, find_peak, run_server

READY_TIMEOUT_S = 600  # engine load + warm-up of every batch shape (torch.compile can take minutes)


def devices_for(count: int, gpus: int, cores: int) -> list[str]:
    """`count` devices: GPUs `cuda:i` where there are any (-1: all of them), else CPU workers `cpu:i`."""
    available = gpus if gpus else max(1, cores)
    n = available if count < 0 else count
    if n < 1 or n > available:
        kind = "GPUs" if gpus else "CPU cores"
        raise ValueError(f"asked for {count} devices but this machine has {available} {kind}")
    return [f"cuda:{i}" if gpus else f"cpu:{i}" for i in range(n)]


def _serve(make_engine: Callable[[], Any], samples: Feed, device: str, threads: int, max_batch: int,
           max_delay_s: float, requests, results, parent_pid: int | None = None) -> None:
    """Worker process: pin the device, load the engine, batch what arrives, report completed ids."""
    from ..isolate import die_with_parent

    die_with_parent(parent_pid)  # a queue gives no EOF: without this a killed parent leaves workers blocked
    kind, _, index = device.partition(":")
    if kind == "cuda":
        os.environ["CUDA_VISIBLE_DEVICES"] = index  # before anything initializes CUDA in this process
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        from .sut import SampleLibrary, SutConfig

        engine = make_engine()

        def report(ids: list[int], rows) -> None:
            # rows are None only where the batcher answers without data after an engine error: the parent
            # answers LoadGen and fails the test with the error
            results.put(("done", device, ids) if rows is not None else
                        ("failed", device, (ids, f"{type(batcher.error).__name__}: {batcher.error}")))

        batcher = engine.sut(SampleLibrary(samples), SutConfig(max_batch, max_delay_s, pipelined=False), report).start()
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        results.put(("error", device, f"{type(e).__name__}: {e}"))
        return
    gc_pause.freeze_and_disable()  # a short-lived worker: no collection stalls while it serves
    # the switch interval the in-process harness measures with (loadgen.GIL_SWITCH_INTERVAL_S): the worker's
    # threads (requests in, batches launched, batches answered) would otherwise wait up to 5 ms for the GIL
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    results.put(("ready", device, None))
    try:
        while (msg := requests.get()) is not None:
            batcher.submit(msg)
        batcher.stop()
    except BaseException:  # noqa: BLE001 - an engine error was reported with its answers ("failed")
        pass
    finally:
        engine.close()


class WorkerPool:
    """Worker processes, one per device, each holding the samples and batching in front of its engine; one
    LoadGen system under test over all of them (`sut`)."""

    def __init__(self, make_engine: Callable[[], Any], samples: Feed, devices: list[str], max_batch: int,
                 max_delay_s: float, threads_per_cpu_worker: int = 1) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.devices = devices
        self.sample_count = feed_len(samples)
        self._requests = [ctx.Queue() for _ in devices]
        self._results = ctx.Queue()
        self._procs = [ctx.Process(target=_serve, daemon=True, name=f"scaleproof-{d}",
                                   args=(make_engine, samples, d, threads_per_cpu_worker, max_batch, max_delay_s,
                                         q, self._results, os.getpid()))
                       for d, q in zip(devices, self._requests, strict=True)]
        for p in self._procs:
            p.start()
        ready = 0
        while ready < len(devices):
            try:
                kind, device, detail = self._results.get(timeout=READY_TIMEOUT_S)
            except queue.Empty:
                self.close()
                raise RuntimeError(f"workers did not load their engines within {READY_TIMEOUT_S} s") from None
            if kind == "error":
                self.close()
                raise RuntimeError(f"worker {device} failed to start: {detail}")
            ready += kind == "ready"
        self.max_batch, self.max_delay_s = max_batch, max_delay_s
        self._outstanding = [0] * len(devices)
        self._lock = threading.Lock()
        self.failures: list[str] = []  # engine errors the workers reported, oldest first
        self.failed_answers = 0  # completions sent without data after such an error

    def sut(self, library, config, complete) -> PoolSut:
        """The system under test over the workers. Their samples and batcher settings were given when the pool
        started (each worker loaded the samples then); a LoadGen test with other settings is refused."""
        if config.fixed_batch:
            raise ValueError("the worker pool batches dynamically; static batching runs on one engine in process")
        if library.count != self.sample_count or (config.max_batch, config.max_delay_s) not in (
                (self.max_batch, self.max_delay_s), (self.max_batch, 0.0)):  # SingleStream runs without a window
            raise ValueError(f"this pool serves {self.sample_count} samples with max batch {self.max_batch} and a "
                             f"{self.max_delay_s * 1e3:g} ms window; start another pool for {library.count} samples, "
                             f"max batch {config.max_batch}, {config.max_delay_s * 1e3:g} ms")
        return PoolSut(self, complete)

    def next_completion(self, timeout_s: float) -> list[int] | None:
        """Request ids a worker finished (its outstanding count updated), or None if none within the timeout.
        Requests a worker answered after its engine failed count as finished; the failure is kept in `failures`."""
        try:
            kind, device, ids = self._results.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if kind == "failed":
            ids, why = ids
            self.failed_answers += 1
            if f"worker {device}: {why}" not in self.failures[-1:]:  # one line per failure, not per answer
                self.failures.append(f"worker {device}: {why}")
        elif kind != "done":
            return None
        with self._lock:
            self._outstanding[self.devices.index(device)] -= len(ids)
        return ids

    def submit(self, requests: list[tuple[int, int]]) -> None:
        """Deal requests to the workers with the fewest outstanding (a slower device gets fewer)."""
        per: list[list[tuple[int, int]]] = [[] for _ in self.devices]
        with self._lock:
            for r in requests:
                i = min(range(len(per)), key=lambda k: self._outstanding[k] + len(per[k]))
                per[i].append(r)
            for i, reqs in enumerate(per):
                self._outstanding[i] += len(reqs)
        for i, reqs in enumerate(per):
            if reqs:
                self._requests[i].put(reqs)

    def close(self) -> None:
        for q, p in zip(self._requests, self._procs, strict=True):
            if p.is_alive():
                q.put(None)
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()


class PoolSut:
    """The pool as LoadGen's system under test for one test: requests dealt to the workers, their completions
    read back and handed to LoadGen."""

    def __init__(self, pool: WorkerPool, complete) -> None:
        self.pool, self.complete = pool, complete
        self.batch_sizes: Counter[int] = Counter()  # per-worker batch sizes stay in the workers
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="scaleproof-pool-reader", daemon=True)
        self._failed_before = 0

    def start(self) -> PoolSut:
        self._failed_before = self.pool.failed_answers
        self._reader.start()
        return self

    def submit(self, requests: list[tuple[int, int]]) -> None:
        self.pool.submit(requests)

    def _read(self) -> None:
        while not self._stop.is_set():
            if (ids := self.pool.next_completion(0.05)) is not None:
                self.complete(ids, None)

    def stop(self) -> None:
        """Stop reading completions; raise if a worker's engine failed during this test (its answers had no data)."""
        self._stop.set()
        self._reader.join()
        if self.pool.failed_answers > self._failed_before:
            raise RuntimeError(f"an engine failed during the test: {self.pool.failures[-1]}")


def _runner(pool: WorkerPool, samples: Feed, cfg: LoadgenSettings, log_dir: Path, n: int,
            progress: Callable[[str], None], label: str = "") -> Callable[[float], dict[str, Any]]:
    counter = iter(range(10_000))

    def run_at(q: float) -> dict[str, Any]:
        r = run_server(pool, samples, cfg, q, log_dir / f"{n}-devices{label}-{next(counter):02d}").as_dict()
        progress(f"{n} device(s){label} @ {q:,.0f} QPS: " + (f"VALID, {r['qps']:,.0f} QPS achieved, P99 "
                                                            f"{r['p99_ms']:.3f} ms" if r["valid"] else
                                                            f"INVALID, P99 {r['p99_ms']:.3f} ms"))
        return r
    return run_at


def measure_devices(pool: WorkerPool, samples: Feed, cfg: LoadgenSettings, n: int, start_qps: float, max_runs: int,
                    tolerance: float, log_dir: Path, progress: Callable[[str], None], repeats: int, confirm_s: float,
                    confirm_steps: int) -> dict[str, Any]:
    """`repeats` peak searches over `n` devices, then (with `confirm_s`) a confirmation run of at least that long
    at the lowest peak: the capacity is what that VALID run achieved, as for one engine in 05_benchmark."""
    run_at = _runner(pool, samples, cfg, log_dir, n, progress)
    searches = [find_peak(run_at, repeat_start(start_qps, k, repeats), max_runs, tolerance) for k in range(repeats)]
    peaks = [s.peak_qps for s in searches]
    out: dict[str, Any] = {"peaks": peaks, "searches": [asdict(s) for s in searches], "confirmation": None,
                           "qps": None}
    if any(p is None for p in peaks):
        return out
    if not confirm_s:
        return {**out, "qps": min(peaks)}
    long_cfg = replace(cfg, min_duration_s=confirm_duration_s(cfg.min_duration_s, confirm_s))
    conf = confirm(_runner(pool, samples, long_cfg, log_dir, n, progress, "-confirm"), min(peaks), tolerance,
                   confirm_steps, cfg.sla_p99_ms)
    return {**out, "confirmation": conf, "qps": conf["run"]["qps"] if conf["run"] else None}


def measure_scaling(make_engine: Callable[[], Any], samples: Feed, devices: list[str], cfg: LoadgenSettings,
                    start_qps: float, max_runs: int, tolerance: float, log_dir: Path,
                    threads_per_cpu_worker: int = 1, progress: Callable[[str], None] = lambda _: None,
                    repeats: int = 1, confirm_s: float = 0.0, confirm_steps: int = 3) -> dict:
    """Server capacity at the P99 bound with 1 device and with all `devices`, the scaling factor, and its range
    from the repeated searches (low: the fewest N-device QPS over the most 1-device QPS; high: the reverse)."""
    per_n: dict[int, dict[str, Any]] = {}
    for n in sorted({1, len(devices)}):
        pool = WorkerPool(make_engine, samples, devices[:n], cfg.max_batch, cfg.max_delay_ms / 1e3,
                          threads_per_cpu_worker)
        try:
            per_n[n] = measure_devices(pool, samples, cfg, n, start_qps * n, max_runs, tolerance, log_dir, progress,
                                       repeats, confirm_s, confirm_steps)
        finally:
            pool.close()
    n = len(devices)
    one, all_ = per_n[1]["qps"], per_n[n]["qps"]
    factor = all_ / (n * one) if one and all_ else None
    factor_range = None
    if factor is not None:  # each count's capacity between what was confirmed and its searches' upper bound
        hi_one, hi_all = (upper_bound(per_n[k]["searches"], per_n[k]["qps"]) for k in (1, n))
        factor_range = [all_ / (n * hi_one), hi_all / (n * one)]
    return {
        "devices": devices,
        "peak_qps": {"1": one, str(n): all_},
        "scaling_factor": factor,
        "factor_range": factor_range,
        "confirmed": bool(confirm_s),
        "method": f"Server capacity at the P99 bound, one worker process per device, one LoadGen run over all; "
                  f"{repeats} peak search(es) per device count" + (f", then a confirmation run of at least "
                  f"{confirm_duration_s(cfg.min_duration_s, confirm_s):g} s whose achieved QPS is the capacity"
                  if confirm_s else "") + "; factor = capacity(N) / (N x capacity(1))",
        "searches": {str(k): v for k, v in per_n.items()},
    }
