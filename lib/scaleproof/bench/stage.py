"""Stage 05: time every validated engine and the PyTorch baseline, per batch size, in one run.

Each engine is measured in its own fresh process: thread pools of one runtime cannot disturb
another's timings, and the process's peak memory belongs to that engine alone.
"""

from __future__ import annotations

import multiprocessing
import resource
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .. import build, hardware, stages
from ..backends.base import usable_threads
from ..config import Params
from ..datasets import splits_for
from .timing import time_engine


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def batch_input(x: np.ndarray, batch: int) -> np.ndarray:
    """A batch of real inputs (repeated if the split is smaller than the batch)."""
    idx = np.arange(batch) % len(x)
    return np.ascontiguousarray(x[idx])


CAPACITY_METHOD = "highest valid offline throughput among batch sizes whose P99 batch latency <= {sla} ms"


def capacity(timings: list[dict[str, Any]], sla_p99_ms: float) -> dict[str, Any] | None:
    """Highest valid throughput among batch sizes whose P99 batch latency meets the SLA, or None."""
    ok = [t for t in timings if t["valid"] and t["p99_ms"] <= sla_p99_ms]
    if not ok:
        return None
    best = max(ok, key=lambda t: t["throughput"])
    return {"qps": best["throughput"], "batch": best["batch"], "p99_ms": best["p99_ms"], "cov": best["cov"]}


def measure_engine(run_dir: str, entry: dict[str, Any], values: dict[str, Any], x: np.ndarray) -> dict[str, Any]:
    """Load one engine and time it at every batch size (runs in a fresh worker process)."""
    params = Params.parse(values)
    before = rss_mb()
    engine = build.load_engine(Path(run_dir), entry, params.threads)
    timings = []
    try:
        for b in params.batch_sizes:
            t = time_engine(engine, batch_input(x, b), params.warmup, params.min_repeats, params.min_time_s,
                            params.max_cov).as_dict()
            timings.append(t)
            verdict = (f"{t['throughput']:.0f} samples/s, P99 {t['p99_ms']:.3f} ms" if t["valid"]
                       else f"INVALID: {t['reason']}")
            print(f"[scaleproof] {entry['name']} batch {b}: {verdict}", flush=True)
        memory = {"process_peak_rss_mb": round(peak_rss_mb(), 1), "engine_rss_mb": round(rss_mb() - before, 1),
                  **engine.memory()}
    finally:
        engine.close()
    return {"memory": memory, "timings": timings}


def run(params: Params) -> dict[str, Any]:
    exported = stages.require(params, "01_export")
    built = stages.require(params, "03_build")
    validated = stages.require(params, "04_validate")
    x = splits_for(exported["dataset"], tuple(exported["input_shape"]), params.seed)["val"].x
    passed = set(validated["passed"])
    rows, excluded = [], []
    ctx = multiprocessing.get_context("spawn")
    for entry in built["engines"]:
        if entry["name"] not in passed and not entry["baseline"]:
            excluded.append({"engine": entry["name"], "reason": "failed validation"})
            continue
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            measured = pool.submit(measure_engine, str(params.run_path), entry, params.values(), x).result()
        rows.append({"engine": entry["name"], "backend": entry["backend"], "precision": entry["precision"],
                     "baseline": entry["baseline"], "validated": entry["name"] in passed, **measured,
                     "capacity": capacity(measured["timings"], params.sla_p99_ms)})
    result = {
        "device_slug": hardware.device_slug(),
        "threads": usable_threads(params.threads),
        "harness": {"warmup": params.warmup, "min_repeats": params.min_repeats, "min_time_s": params.min_time_s,
                    "max_cov": params.max_cov, "sla_p99_ms": params.sla_p99_ms, "timer": "time.perf_counter",
                    "isolation": "one fresh process per engine",
                    "memory": "process_peak_rss_mb: peak RSS of the process that loaded only this engine; "
                              "engine_rss_mb: RSS added by loading and running it, its runtime libraries included"},
        "capacity_method": CAPACITY_METHOD.format(sla=params.sla_p99_ms),
        "baseline": built["baseline"],
        "engines": rows,
        "excluded": excluded,
    }
    stages.write_result(params.run_path, "05_benchmark", result)
    return result
