"""The measuring harness: warm-up, repeated timed runs, percentiles, spread and validity rules.

A timing that breaks a validity rule is returned with valid=False and the reason; callers report
it as INVALID, never as a number.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..io_spec import feed_len
from . import gc_pause

MAX_TIME_FACTOR = 20  # stop after 20x min_time_s even if min_repeats is not reached (then INVALID)
BLOCKS = 5  # stability is judged on block means: a drifting machine shows, a lone outlier does not


@dataclass
class Timing:
    batch: int
    iterations: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    cov: float  # coefficient of variation of the mean latency across BLOCKS consecutive blocks
    latency_cov: float  # coefficient of variation of single iterations (tail noise; informational)
    throughput: float  # samples per second over the timed wall time
    valid: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def block_cov(lat: np.ndarray, blocks: int = BLOCKS) -> float:
    """CoV of the mean latency of `blocks` consecutive blocks of iterations (NaN if too few)."""
    if len(lat) < 2 * blocks:
        return float("nan")
    means = np.array([b.mean() for b in np.array_split(lat, blocks)])
    return float(means.std() / means.mean())


def summarize(latencies_s: np.ndarray, batch: int, min_repeats: int, min_time_s: float, max_cov: float,
              wall_s: float | None = None) -> Timing:
    """Percentiles, spread and validity of per-iteration latencies (seconds) timed over `wall_s`."""
    lat = np.asarray(latencies_s, dtype=np.float64)
    n = len(lat)
    total = float(wall_s if wall_s is not None else lat.sum())
    mean = float(lat.mean()) if n else float("nan")
    cov = block_cov(lat)
    reasons = []
    if n < min_repeats:
        reasons.append(f"{n} timed iterations < min_repeats {min_repeats}")
    if total < min_time_s:
        reasons.append(f"timed {total:.3f} s < min_time_s {min_time_s}")
    if cov != cov:  # NaN: too few iterations for BLOCKS block means
        reasons.append(f"{n} timed iterations are too few to judge stability (at least {2 * BLOCKS}; raise "
                       "min_repeats or min_time_s)")
    elif cov > max_cov:
        reasons.append(f"latency spread (CoV) {cov:.3f} > max_cov {max_cov}: too unstable")
    pct = np.percentile(lat, [50, 90, 99]) * 1e3 if n else [float("nan")] * 3
    return Timing(
        batch=batch, iterations=n, duration_s=round(total, 6), p50_ms=float(pct[0]), p90_ms=float(pct[1]),
        p99_ms=float(pct[2]), mean_ms=mean * 1e3, cov=cov,
        latency_cov=float(lat.std() / mean) if n > 1 and mean > 0 else float("nan"),
        throughput=batch * n / total if total > 0 else float("nan"),
        valid=not reasons, reason="; ".join(reasons) or "valid",
    )


def time_engine(engine, x, warmup: int, min_repeats: int, min_time_s: float, max_cov: float) -> Timing:
    """Time `engine.infer(x)`: untimed warm-up, then iterations until both minimums are met.

    `x` is a feed of named inputs. `infer` returns host arrays, so device work has finished when the
    clock stops.
    """
    n_rows = feed_len(x)
    for _ in range(warmup):
        engine.infer(x)
    lat: list[float] = []
    with gc_pause.paused():
        start = time.perf_counter()
        deadline = start + MAX_TIME_FACTOR * min_time_s
        while True:
            t0 = time.perf_counter()
            engine.infer(x)
            t1 = time.perf_counter()
            lat.append(t1 - t0)
            if (len(lat) >= min_repeats and t1 - start >= min_time_s) or t1 > deadline:
                break
    return summarize(np.array(lat), n_rows, min_repeats, min_time_s, max_cov, wall_s=t1 - start)
