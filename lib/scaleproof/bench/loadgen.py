"""MLPerf LoadGen scenarios over the dynamic batcher, and the bounded search for peak Server QPS.

LoadGen generates the load (Poisson arrivals in Server) and judges validity; this module only
connects it to an engine and reads its logs. An INVALID run carries LoadGen's own reasons.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from ..io_spec import Feed
from . import gc_pause
from .sut import SampleLibrary, Sut, SutConfig

# LoadGen's issue thread and the batcher's worker share the GIL; at the default 5 ms switch interval
# a request can wait milliseconds for it, which would be measured as engine latency
GIL_SWITCH_INTERVAL_S = 50e-6
KEEP_LOGS = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
SUMMARY_CHECKS = ("Performance constraints satisfied", "Min duration satisfied", "Min queries satisfied",
                  "Early stopping satisfied")


class Scenario(StrEnum):
    single_stream = "single_stream"
    offline = "offline"
    server = "server"


@dataclass
class LoadgenSettings:
    min_duration_s: float
    min_queries: int
    sla_p99_ms: float
    max_batch: int
    max_delay_ms: float
    fixed_batch: bool = False
    duration_budget_s: float = 60.0  # longest a Server run may last to meet LoadGen's early stopping at a low rate


@dataclass
class LoadgenRun:
    scenario: str
    valid: bool
    reason: str
    target_qps: float | None
    qps: float  # completed samples per second (Offline: the result; Server: what was served)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    queries: int
    batch_sizes: dict[int, int]
    log_dir: str
    batching: str
    min_duration_s: float = math.nan  # LoadGen's effective minimum duration: a VALID run lasted at least this
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_detail_log(path: Path) -> dict[str, Any]:
    """key -> value of every `:::MLLOG {json}` line of LoadGen's detail log."""
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            with_json = json.loads(line[len(":::MLLOG "):])
            out[with_json["key"]] = with_json["value"]
    return out


def invalid_reasons(summary: str) -> str:
    """LoadGen's own words for why a run is INVALID (the summary's unmet checks and recommendations)."""
    lines = summary.splitlines()
    unmet = [ln.strip() for ln in lines if any(ln.strip().startswith(c) for c in SUMMARY_CHECKS)
             and ln.strip().endswith(("NO", "No"))]
    recs = [ln.strip(" *") for ln in lines if ln.strip().startswith("*") and "successful" not in ln]
    return "; ".join(unmet + recs) or "LoadGen reported INVALID"


CHECK_WORDS = dict(zip(SUMMARY_CHECKS, ("latency bound", "min duration", "min queries", "early stopping"),
                       strict=True))


def short_reason(reason: str) -> str:
    """`invalid_reasons` in a few words, for a progress line: the unmet checks (the full text is kept too)."""
    unmet = [part.split(":")[0].strip() for part in reason.split(";") if part.strip().endswith(("NO", "No"))]
    return "failed: " + ", ".join(CHECK_WORDS.get(u, u) for u in unmet) if unmet else reason[:90]


@contextlib.contextmanager
def switch_interval(seconds: float):
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_scenario(engine, samples: Feed, scenario: Scenario, cfg: LoadgenSettings, log_dir: Path,
                 target_qps: float | None = None, expected_qps: float | None = None,
                 expected_latency_s: float | None = None) -> LoadgenRun:
    """One LoadGen test of `engine` in `scenario`; logs kept in `log_dir`. `engine` is anything with
    `sut(library, config, complete)`: an engine in this process, a worker pool, a served model."""
    import mlperf_loadgen as lg

    log_dir.mkdir(parents=True, exist_ok=True)
    def complete(ids: list[int], rows: np.ndarray | None) -> None:
        # performance mode: LoadGen does not read the data, so point at the output rows without copying
        # (a worker pool's outputs stay in its processes: no data at all)
        if rows is None:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(rid, 0, 0) for rid in ids])
            return
        base, stride = rows.ctypes.data, rows.strides[0] if rows.ndim else 0
        lg.QuerySamplesComplete([lg.QuerySampleResponse(rid, base + i * stride, stride) for i, rid in enumerate(ids)])

    # SingleStream measures one query at a time: no queue window, nothing to wait for
    delay = 0.0 if scenario is Scenario.single_stream else cfg.max_delay_ms / 1e3
    library = SampleLibrary(samples)
    settings = lg.TestSettings()
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(cfg.min_duration_s * 1000)
    settings.min_query_count = cfg.min_queries
    if scenario is Scenario.server:
        settings.scenario = lg.TestScenario.Server
        settings.server_target_qps = float(target_qps)
        settings.server_target_latency_ns = int(cfg.sla_p99_ms * 1e6)
        settings.server_coalesce_queries = True
    elif scenario is Scenario.offline:
        settings.scenario = lg.TestScenario.Offline
        settings.offline_expected_qps = float(expected_qps or 1000.0)
    else:
        settings.scenario = lg.TestScenario.SingleStream
        # LoadGen pre-generates min_duration / expected latency queries: a good guess keeps the run long enough
        settings.single_stream_expected_latency_ns = max(int((expected_latency_s or 1e-3) * 1e9), 1000)
    log = lg.LogSettings()
    log.log_output.outdir = str(log_dir)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False

    # started last and stopped whatever happens: an in-process batcher holds its engine's one worker thread
    batcher: Sut = engine.sut(library, SutConfig(cfg.max_batch, delay, cfg.fixed_batch), complete).start()
    sut = qsl = None
    try:
        sut = lg.ConstructSUT(lambda qs: batcher.submit([(q.id, q.index) for q in qs]), lambda: None)
        qsl = library.construct(lg)
        with switch_interval(GIL_SWITCH_INTERVAL_S), gc_pause.paused():
            lg.StartTestWithLogSettings(sut, qsl, settings, log)
    finally:
        if qsl is not None:
            lg.DestroyQSL(qsl)
        if sut is not None:
            lg.DestroySUT(sut)
        batcher.stop()
    for f in log_dir.iterdir():  # keep the summary and detail logs; the rest is empty in performance mode
        if f.name not in KEEP_LOGS:
            f.unlink() if f.is_file() else shutil.rmtree(f)
    detail = read_detail_log(log_dir / "mlperf_log_detail.txt")
    summary = (log_dir / "mlperf_log_summary.txt").read_text()
    valid = detail.get("result_validity") == "VALID"
    ns = 1e-6
    qps = next((detail[k] for k in ("result_samples_per_second", "result_completed_samples_per_sec",
                                     "result_qps_with_loadgen_overhead") if k in detail), math.nan)
    return LoadgenRun(
        scenario=scenario.value, valid=valid, reason="VALID" if valid else invalid_reasons(summary),
        target_qps=target_qps, qps=float(qps),
        p50_ms=detail.get("result_50.00_percentile_latency_ns", math.nan) * ns,
        p90_ms=detail.get("result_90.00_percentile_latency_ns", math.nan) * ns,
        p99_ms=detail.get("result_99.00_percentile_latency_ns", math.nan) * ns,
        queries=int(detail.get("result_query_count", sum(k * v for k, v in batcher.batch_sizes.items()))),
        batch_sizes=dict(sorted(batcher.batch_sizes.items())), log_dir=str(log_dir),
        batching=(f"static: fixed batch {cfg.max_batch}, no queue window" if cfg.fixed_batch
                  else f"dynamic: max batch {cfg.max_batch}, max queue delay {delay * 1e3:g} ms"),
        min_duration_s=detail.get("effective_min_duration_ms", cfg.min_duration_s * 1e3) / 1e3,
        # what LoadGen's QSL load asked for; queue and compute time where the system under test keeps them
        extra={"performance_samples": library.performance_set,
               **(batcher.run_extra() if hasattr(batcher, "run_extra") else {})},
    )


MORE_QUERIES_RE = re.compile(r"Processed (\d+) queries\.\s*\*?\s*Would need to run at least (\d+) more queries")
MAX_RETRY_DURATION_FACTOR = 5  # a retry may run up to 5x min_duration at the target rate, or the duration budget
# (server_duration_budget_s), whichever is longer: at low rates early stopping needs ~460 queries whatever the
# rate, which a slow but valid engine must be given the time to serve


def retry_fits(needed_queries: int, target_qps: float, min_duration_s: float, budget_s: float = 60.0) -> bool:
    """Whether a Server run of `needed_queries` at `target_qps` fits the retry budget."""
    return needed_queries / target_qps <= max(MAX_RETRY_DURATION_FACTOR * min_duration_s, budget_s)


def queries_needed(run: LoadgenRun, summary: str) -> int | None:
    """Total queries LoadGen's early stopping asks for, when that is the only check a run failed."""
    if run.valid or "Performance constraints satisfied : Yes" not in summary:
        return None
    m = MORE_QUERIES_RE.search(summary)
    return int(m.group(1)) + int(m.group(2)) if m else None


MAX_RETRIES = 2  # queries over the bound raise what early stopping asks for: one more retry, then the run stands


def run_server(engine, samples: Feed, cfg: LoadgenSettings, target_qps: float, log_dir: Path) -> LoadgenRun:
    """A Server run at `target_qps`. If the latency bound held but early stopping wanted more queries
    than the minimum duration produced (low rates), run again with as many queries as LoadGen asked
    for, while that fits `retry_fits` (at most MAX_RETRIES times); else the run stays INVALID, marked
    `latency_held` in `extra` (the rate met the bound: a search must not look for the peak below it)."""
    run = run_scenario(engine, samples, Scenario.server, cfg, log_dir, target_qps=target_qps)
    needed = queries_needed(run, (log_dir / "mlperf_log_summary.txt").read_text())
    retries = 0
    while (needed is not None and retries < MAX_RETRIES
           and retry_fits(needed, target_qps, cfg.min_duration_s, cfg.duration_budget_s)):
        retry_cfg = replace(cfg, min_queries=math.ceil(needed * 1.1))
        run = run_scenario(engine, samples, Scenario.server, retry_cfg, log_dir, target_qps=target_qps)
        retries += 1
        run.extra["retried_for_early_stopping"] = (f"min_queries raised to {retry_cfg.min_queries} as LoadGen asked"
                                                   + (f" ({retries} retries)" if retries > 1 else ""))
        needed = queries_needed(run, (log_dir / "mlperf_log_summary.txt").read_text())
    if needed is not None:
        budget = max(MAX_RETRY_DURATION_FACTOR * cfg.min_duration_s, cfg.duration_budget_s)
        run.extra["latency_held"] = True
        run.extra["early_stopping_needs"] = needed
        run.reason += (f"; the latency bound held, but early stopping needs {needed} queries, "
                       f"{needed / target_qps:,.0f} s at {target_qps:,.3g} QPS: "
                       + (f"still short after {retries} retries" if retries == MAX_RETRIES else
                          f"over the duration budget of {budget:g} s (server_duration_budget_s)"))
    return run


@dataclass
class PeakSearch:
    peak_qps: float | None  # highest target QPS with a VALID run, None if none was VALID
    peak_run: dict[str, Any] | None
    runs: list[dict[str, Any]]
    reason: str


def latency_held(run: dict[str, Any]) -> bool:
    """An INVALID run whose latency bound held, failed only for early stopping's query count over the budget."""
    return not run["valid"] and bool((run.get("extra") or {}).get("latency_held"))


def find_peak(run_at: Callable[[float], dict[str, Any]], start_qps: float, max_runs: int,
              tolerance: float = 0.05) -> PeakSearch:
    """Highest target QPS whose run is VALID, by a bounded search: double or halve from `start_qps`
    until VALID and INVALID bracket the peak, then bisect until the bracket is within `tolerance`.

    A rate whose run met the latency bound but could not meet early stopping within the duration budget
    (`latency_held`) is VALID-capable: the search never goes below it (a lower rate needs even longer for
    the same queries) and looks above it, where the same queries take less time."""
    runs: list[dict[str, Any]] = []
    lo: float | None = None  # highest VALID target so far
    hi: float | None = None  # lowest INVALID target so far (latency-held runs excluded)
    held: float | None = None  # highest latency-held target so far
    q = start_qps
    while len(runs) < max_runs:
        r = run_at(q)
        runs.append(r)
        if r["valid"]:
            lo = q if lo is None else max(lo, q)
        elif latency_held(r):
            held = q if held is None else max(held, q)
        else:
            hi = q if hi is None else min(hi, q)
        floor = max(lo or 0.0, held or 0.0) or None  # the rate the search never goes under
        if floor is not None and hi is not None:
            if (hi - floor) / floor <= tolerance:
                break
            q = (floor + hi) / 2
        else:
            q = q * 2 if hi is None else q / 2
    if lo is None:
        if held is not None:
            needs = max((r.get("extra") or {}).get("early_stopping_needs", 0) for r in runs if latency_held(r))
            return PeakSearch(None, None, runs, f"not measurable within the duration budget: the latency bound held "
                              f"up to {held:.4g} QPS, but LoadGen's early stopping needs about {needs} queries there; "
                              "raise server_duration_budget_s (or loadgen_min_duration_s) to measure this engine")
        return PeakSearch(None, None, runs, f"no VALID run in {len(runs)} tries down to {min(r['target_qps'] for r in runs):.3g} QPS")
    peak_run = max((r for r in runs if r["valid"]), key=lambda r: r["target_qps"])
    bracket = f"lowest INVALID {hi:.4g} QPS" if hi is not None else "no INVALID run: the peak may be higher"
    return PeakSearch(lo, peak_run, runs, f"highest VALID {lo:.4g} QPS; {bracket}; {len(runs)} runs")
