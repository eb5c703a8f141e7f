"""Stage 05: measure every validated engine and the PyTorch baseline, in one run.

Per engine: the timing harness per batch size (throughput and latency curves), then MLPerf
LoadGen's SingleStream, Offline and Server scenarios through the dynamic batcher, with a bounded
search for the peak Server QPS under the P99 bound, for dynamic and for static batching.
Each engine is measured in its own fresh process: thread pools of one runtime cannot disturb
another's timings, and the process's peak memory belongs to that engine alone.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .. import anomalies, hardware, paths, stages
from ..backends.base import usable_threads
from ..bench import gc_pause
from ..bench.capacity import (
    batcher_grid,
    capacity,
    choose_batcher,
    confirm,
    confirm_duration_s,
    confirm_plan,
    ladder_start,
    machine_hold,
    pricing_floor,
    repeat_start,
    search_span,
    searches_of,
)
from ..bench.loadgen import (
    LoadgenSettings,
    PeakSearch,
    Scenario,
    find_peak,
    run_scenario,
    run_server,
    short_reason,
)
from ..bench.timing import time_engine
from ..config import Params
from ..datasets import splits_for
from ..io_spec import Feed, ModelIO, feed_len
from ..isolate import ChildCrashed, call_isolated
from ..provenance import runtime_versions
from . import build

logger = logging.getLogger(__name__)

CAPACITY_METHOD = ("confirmed MLPerf LoadGen Server QPS with dynamic batching: {repeats} independent peak searches "
                   "(short runs, bisected to within {tol:.0%}), then a run of at least {confirm_s:g} s from the highest "
                   "rate every search vouched for (or the share of it that this run's earlier confirmations held, where they "
                   "held less), stepping down by 1, 2, 4 ... times {tol:.0%} while INVALID; the capacity is the QPS LoadGen achieved in "
                   "that VALID run (P99 <= {sla} ms and LoadGen's duration, query-count and early-stopping checks); {scope}")
CONFIRM_SCOPE = {"leaders": "confirmed and priced: the baseline and every engine whose search range reaches the "
                            "leader's lowest peak less {tol:.0%}; an engine further behind is reported with its search "
                            "figures, not priced (confirm: all prices every engine)",
                 "all": "every engine with a search peak is confirmed and priced (confirm: all)"}


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def batch_input(engine, x: Feed, batch: int) -> Feed:
    """A batch of real inputs (repeated if the split is smaller than the batch) in the engine's host buffers."""
    out = {}
    for k, v in x.items():
        out[k] = engine.host_buffer((batch, *v.shape[1:]), v.dtype)
        np.take(v, np.arange(batch) % len(v), axis=0, out=out[k])
    return out


def peak_repeats(params: Params, gpu: bool) -> int:
    return params.peak_repeats or (3 if gpu else 2)


def _runner(engine, x: Feed, cfg: LoadgenSettings, log_root: Path, run_dir: Path, label: str):
    """A function target QPS -> one Server run (logs under `server-<label>-NN`), reported as it ends."""
    def run_at(q: float) -> dict[str, Any]:
        n = len(list(log_root.glob(f"server-{label}-*")))
        r = run_server(engine, x, cfg, q, log_root / f"server-{label}-{n:02d}").as_dict()
        r["log_dir"] = str(Path(r["log_dir"]).relative_to(run_dir))
        logger.info(f"{engine.name} server {label} @ {q:,.0f} QPS: "
            + (f"VALID, {r['qps']:,.0f} QPS achieved, P99 {r['p99_ms']:.3f} ms" if r["valid"]
               else f"INVALID, P99 {r['p99_ms']:.3f} ms ({short_reason(r['reason'])})"))
        return r
    return run_at


def server_search(engine, x: Feed, cfg: LoadgenSettings, start_qps: float, params: Params, log_root: Path,
                  run_dir: Path, label: str, latency_floor_ms: float | None = None) -> dict[str, Any]:
    """The peak Server QPS at the P99 bound; skipped at once when one inference already takes longer than
    the bound (`latency_floor_ms`), since then no rate can be VALID and halving the target only wastes time."""
    if latency_floor_ms is not None and latency_floor_ms > params.sla_p99_ms:
        reason = (f"one inference takes {latency_floor_ms:.3f} ms (P50), more than the P99 bound sla_p99_ms="
                  f"{params.sla_p99_ms:g} ms: no Server rate can be VALID; raise sla_p99_ms or use a faster engine")
        logger.info(f"{engine.name} server {label}: {reason}")
        return asdict(PeakSearch(None, None, [], reason))
    run_at = _runner(engine, x, cfg, log_root, run_dir, label)
    return asdict(find_peak(run_at, start_qps, params.peak_search_runs, params.peak_tolerance))


def search_server(engine, x: Feed, cfg: LoadgenSettings, start_qps: float, params: Params, log_root: Path,
                  run_dir: Path, latency_floor_ms: float | None, gpu: bool) -> dict[str, Any]:
    """Dynamic batching's searches: the batcher sweep (one search per configuration) and the repeated searches
    with the chosen one. The confirmation is `confirm_server`'s."""
    grid = batcher_grid(params.sweep_max_batch, params.sweep_queue_delay_ms,
                        (params.batcher_max_batch, params.max_queue_delay_ms))
    sweep = []
    for mb, delay in grid:
        label = "dynamic" if len(grid) == 1 else f"sweep-b{mb}-d{delay:g}"
        search = server_search(engine, x, replace(cfg, max_batch=mb, max_delay_ms=delay), start_qps, params,
                               log_root, run_dir, label, latency_floor_ms)
        sweep.append({"max_batch": mb, "max_queue_delay_ms": delay, "search": search})
    chosen = choose_batcher(sweep)
    cfg = replace(cfg, max_batch=chosen["max_batch"], max_delay_ms=chosen["max_queue_delay_ms"])
    if len(grid) > 1:
        logger.info(f"{engine.name} batcher: max batch {cfg.max_batch}, queue delay {cfg.max_delay_ms:g} ms "
            f"(highest peak of {len(grid)} configurations)")
    n = peak_repeats(params, gpu)
    repeats = [server_search(engine, x, cfg, repeat_start(start_qps, k, n), params, log_root, run_dir, f"dynamic-r{k}",
                             latency_floor_ms) for k in range(1, n if chosen["search"]["peak_qps"] is not None else 1)]
    return {"batcher": {"max_batch": cfg.max_batch, "max_queue_delay_ms": cfg.max_delay_ms,
                        "chosen_by": (f"highest Server peak of {len(grid)} swept configurations" if len(grid) > 1
                                      else "the profile's batcher_max_batch and max_queue_delay_ms (no sweep)")},
            "sweep": sweep if len(grid) > 1 else [], "dynamic": chosen["search"], "dynamic_repeats": repeats,
            "confirmation": None}


def confirm_server(engine, x: Feed, cfg: LoadgenSettings, server: dict[str, Any], params: Params, log_root: Path,
                   run_dir: Path, gpu: bool, hold: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The confirmation run the priced capacity comes from, with the searches' batcher, from `ladder_start` (or the
    share of it `hold` says this run's earlier confirmations held, `capacity.machine_hold`); None where a search
    found no VALID rate."""
    if any(s["peak_qps"] is None for s in searches_of(server)):
        return None
    cfg = replace(cfg, max_batch=server["batcher"]["max_batch"], max_delay_ms=server["batcher"]["max_queue_delay_ms"])
    floor = pricing_floor(params.min_priced_duration_s, gpu)["floor_s"]
    long_cfg = replace(cfg, min_duration_s=confirm_duration_s(cfg.min_duration_s, floor))
    evidence, why = ladder_start(searches_of(server))
    start = evidence
    if hold:  # the run's earlier confirmations held less than their evidence: start where this machine holds
        start, why = evidence * hold["ratio"], f"{hold['ratio']:.0%} of {why} ({evidence:,.0f} QPS): {hold['why']}"
    out = confirm(_runner(engine, x, long_cfg, log_root, run_dir, "confirm"), start, params.peak_tolerance,
                  params.confirm_steps, params.sla_p99_ms)
    return {**out, "start_qps": start, "start": why, "evidence_qps": evidence, "hold": hold}


def measure_server(engine, x: Feed, cfg: LoadgenSettings, start_qps: float, params: Params, log_root: Path,
                   run_dir: Path, latency_floor_ms: float | None, gpu: bool, hold: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The searches and the confirmation in one go (the confirmation started as `hold` says, if given)."""
    server = search_server(engine, x, cfg, start_qps, params, log_root, run_dir, latency_floor_ms, gpu)
    server["confirmation"] = confirm_server(engine, x, cfg, server, params, log_root, run_dir, gpu, hold)
    return server


def loadgen_settings(params: Params) -> LoadgenSettings:
    return LoadgenSettings(min_duration_s=params.loadgen_min_duration_s, min_queries=params.loadgen_min_queries,
                           sla_p99_ms=params.sla_p99_ms, max_batch=params.batcher_max_batch,
                           max_delay_ms=params.max_queue_delay_ms, duration_budget_s=params.server_duration_budget_s)


def confirm_engine(run_dir: str, entry: dict[str, Any], values: dict[str, Any], x: Feed, server: dict[str, Any],
                   hold: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Load one searched engine and run its confirmation (in a fresh worker process, as its searches were)."""
    params = Params.parse(values)
    run_path = Path(run_dir)
    engine = build.load_engine(run_path, entry, params.threads)
    try:
        return confirm_server(engine, x, loadgen_settings(params), server, params,
                              paths.stage_dir(run_path, "05_benchmark") / "loadgen" / entry["name"], run_path,
                              hardware.gpu_info() is not None, hold)
    finally:
        engine.close()


def measure_engine(run_dir: str, entry: dict[str, Any], values: dict[str, Any], x: Feed,
                   confirm_now: bool = True, hold: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load one engine and measure it (runs in a fresh worker process); its confirmation too if `confirm_now`,
    its ladder started where the run's earlier confirmations held (`hold`, capacity.machine_hold)."""
    params = Params.parse(values)
    run_path = Path(run_dir)
    log_root = paths.stage_dir(run_path, "05_benchmark") / "loadgen" / entry["name"]
    before = rss_mb()
    engine = build.load_engine(run_path, entry, params.threads)
    try:
        timings = []
        for b in params.batch_sizes:
            t = time_engine(engine, batch_input(engine, x, b), params.warmup, params.min_repeats, params.min_time_s,
                            params.max_cov).as_dict()
            timings.append(t)
            logger.info(f"{entry['name']} batch {b}: " + (f"{t['throughput']:.0f} samples/s, P99 {t['p99_ms']:.3f} ms"
                                                  if t["valid"] else f"INVALID: {t['reason']}"))
        best_offline = max((t["throughput"] for t in timings if t["valid"]), default=1000.0)
        cfg = loadgen_settings(params)
        batch1 = next((t["p50_ms"] / 1e3 for t in timings if t["batch"] == 1), None)
        single = run_scenario(engine, x, Scenario.single_stream, cfg, log_root / "single_stream",
                              expected_latency_s=batch1).as_dict()
        # Offline issues expected_qps x min_duration samples: overestimate, so a fast run is not too short
        offline = run_scenario(engine, x, Scenario.offline, cfg, log_root / "offline",
                               expected_qps=1.5 * best_offline).as_dict()
        for r in (single, offline):
            r["log_dir"] = str(Path(r["log_dir"]).relative_to(run_path))
            logger.info(f"{entry['name']} {r['scenario']}: " + (f"{r['qps']:,.0f} samples/s, P90 {r['p90_ms']:.3f} ms"
                                                        if r["valid"] else f"INVALID ({r['reason'][:90]})"))
        # Offline latencies run from the start of the test, not from a query's arrival: not reported
        offline.update(p50_ms=None, p90_ms=None, p99_ms=None)
        static_cfg = replace(cfg, max_batch=params.static_batch, max_delay_ms=0.0, fixed_batch=True)
        static_start = next((t["throughput"] for t in timings if t["batch"] == params.static_batch and t["valid"]),
                            1e3 / max(single["p50_ms"], 1e-3) * params.static_batch)
        # the fastest a request can be answered: a batch of one (dynamic), a batch of static_batch (static)
        one = next((t["p50_ms"] for t in timings if t["batch"] == 1 and t["valid"]), single["p50_ms"])
        static_one = next((t["p50_ms"] for t in timings if t["batch"] == params.static_batch and t["valid"]), one)
        gpu = hardware.gpu_info() is not None
        server = (measure_server(engine, x, cfg, 0.5 * offline["qps"], params, log_root, run_path, one, gpu, hold)
                  if confirm_now else
                  search_server(engine, x, cfg, 0.5 * offline["qps"], params, log_root, run_path, one, gpu))
        server["static"] = (server_search(engine, x, static_cfg, 0.5 * static_start, params, log_root, run_path,
                                          "static", static_one) if params.static_search else
                            asdict(PeakSearch(None, None, [], "not searched (static_search is false)")))
        memory = {"process_peak_rss_mb": round(peak_rss_mb(), 1), "engine_rss_mb": round(rss_mb() - before, 1),
                  **engine.memory()}
    finally:
        engine.close()
    return {"load": engine.info(), "memory": memory, "timings": timings, "single_stream": single, "offline": offline, "server": server}


def load_for_worker(run_dir: str, entry: dict[str, Any], threads: int):
    """Engine factory a multi-device worker process calls (module level, so it pickles)."""
    return build.load_engine(Path(run_dir), entry, threads)


def scaling(params: Params, built: dict[str, Any], rows: list[dict[str, Any]], x: Feed) -> dict[str, Any] | None:
    """Per-device scaling of the best priced engine: Server peak on 1 device and on `scaling_devices`."""
    from ..bench.multi_gpu import devices_for, measure_scaling

    if params.scaling_devices == 0:
        return None
    best = max((r for r in rows if r["capacity"] and r["validated"]), key=lambda r: r["capacity"]["qps"], default=None)
    if best is None:
        return {"skipped": "no engine has a VALID Server capacity to scale"}
    gpu = hardware.gpu_info()
    cores = usable_threads(params.threads)
    devices = devices_for(params.scaling_devices, gpu["count"] if gpu else 0, cores)
    per_worker = max(1, cores // len(devices)) if not gpu else params.threads
    entry = next(e for e in built["engines"] if e["name"] == best["engine"])
    chosen = best["server"]["batcher"]  # the batcher configuration the engine's capacity was measured with
    cfg = replace(loadgen_settings(params), max_batch=chosen["max_batch"], max_delay_ms=chosen["max_queue_delay_ms"])
    logger.info(f"scaling of {best['engine']} over {devices}")
    out = measure_scaling(partial(load_for_worker, str(params.run_path), entry, per_worker), x, devices, cfg,
                          0.5 * best["capacity"]["qps"], params.peak_search_runs, params.peak_tolerance,
                          paths.stage_dir(params.run_path, "05_benchmark") / "loadgen" / f"scaling-{best['engine']}",
                          per_worker, progress=logger.info, repeats=peak_repeats(params, bool(gpu)),
                          confirm_s=pricing_floor(params.min_priced_duration_s, bool(gpu))["floor_s"],
                          confirm_steps=params.confirm_steps)
    return {"engine": best["engine"], "device_kind": "gpu" if gpu else "cpu (stand-ins for GPUs)", **out}


def measured_row(params: Params, entry: dict[str, Any], x: Feed, passed: set[str], confirm_now: bool = True,
                 hold: dict[str, Any] | None = None) -> dict[str, Any]:
    """One engine measured in a fresh process (its confirmation too if `confirm_now`; else `settle` decides)."""
    measured = call_isolated(measure_engine, str(params.run_path), entry, params.values(), x, confirm_now, hold,
                             what=f"benchmarking {entry['name']}", versions=runtime_versions())
    return {"engine": entry["name"], "backend": entry["backend"], "precision": entry["precision"],
            "baseline": entry["baseline"], "validated": entry["name"] in passed, **measured,
            "capacity": None, "capacity_reason": None}


def judged(row: dict[str, Any], floor_s: float, tolerance: float) -> dict[str, Any]:
    """The row's capacity (or why none) and the anomaly checks' flags, from what it measured."""
    cap, why = capacity(row["server"], floor_s)
    row.update(capacity=cap, capacity_reason=why)
    row["flags"] = anomalies.check(row, tolerance)
    logger.info(f"{row['engine']} capacity: " + (f"{cap['qps']:,.0f} QPS ({why})" if cap else why))
    return row


def with_second_look(measure: Callable[[], dict[str, Any]], remeasure: bool, name: str,
                     row: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure (or take `row`, measured already); if an anomaly check flags its capacity (and `remeasure`), measure
    once more and keep the second result, with what the first one was flagged for."""
    row = measure() if row is None else row
    if not (anomalies.second_look_for(row["flags"], row) and remeasure):
        if anomalies.second_look_for(row["flags"]) and remeasure:
            row["second_look"] = ("every peak search found under half the Offline throughput as well, so the Server "
                                  "figure agrees with its own searches")
        return row
    logger.info(f"{name} flagged ({', '.join(f['rule'] for f in row['flags'])}): measuring it once more")
    first = row
    try:
        row = measure()
    except ChildCrashed as e:  # the first measurement stands, with its flags and the crash said
        first["remeasured"] = {"first_flags": first["flags"], "crashed": str(e), "still_flagged": True}
        return first
    row["remeasured"] = {"first_flags": first["flags"], "first_capacity": first["capacity"],
                         "still_flagged": bool(row["flags"]),
                         "what": row.pop("measured_again", "the whole engine: searches, Offline and confirmation")}
    return row


def only_the_confirmation(row: dict[str, Any]) -> bool:
    """Whether a second look at a flagged row needs only a second confirmation run: its one capacity flag is a
    Server figure under half Offline while every search found more than that (the ladder's start, the rate all of
    them vouched for, is above it), so the searches stand and the confirmation is what disagrees. Where the
    searches straddle the line, they are measured again too."""
    if [f["rule"] for f in anomalies.second_look_for(row["flags"], row)] != ["server_below_offline"]:
        return False
    start, _ = ladder_start(searches_of(row["server"]))
    return start >= anomalies.SERVER_TO_OFFLINE * row["offline"]["qps"]


def settle(rows: list[dict[str, Any]], confirm_row: Callable[[dict[str, Any]], dict[str, Any] | None],
           remeasure_row: Callable[[dict[str, Any]], dict[str, Any]], params: Params, floor_s: float) -> None:
    """Confirm what the claims need, in place: the engines `confirm_plan` names (re-planned after each confirmation,
    so one behind a leader that fails its own is confirmed after all), a second look at a confirmed engine an anomaly
    check flags (its figures are priced and claimed; a flag on an engine left unconfirmed changes neither), and the
    others labelled with why they were not confirmed, their search figures kept."""
    done: set[str] = set()
    while True:
        for i, row in enumerate(rows):
            if row["server"]["confirmation"] is not None and row["engine"] not in done:
                done.add(row["engine"])
                rows[i] = with_second_look(lambda row=row: remeasure_row(row), params.remeasure_flagged,
                                           row["engine"], judged(row, floor_s, params.peak_tolerance))
        plan = confirm_plan(rows, params.peak_tolerance, params.confirm.value)
        todo = [r for r in rows if plan[r["engine"]] is None and r["engine"] not in done]
        if not todo:
            break
        for row in todo:
            logger.info(f"{row['engine']}: confirming (within the leader's reach)")
            row["server"]["confirmation"] = confirm_row(row)
            if row["server"]["confirmation"] is None:
                done.add(row["engine"])
                judged(row, floor_s, params.peak_tolerance)
    for row in rows:
        if row["engine"] not in done:
            judged(row, floor_s, params.peak_tolerance)
            if search_span(row["server"]) is None:  # no search peak: capacity()'s reason says why
                continue
            row.update(capacity_reason=plan[row["engine"]], not_confirmed=plan[row["engine"]])
            logger.info(f"{row['engine']}: {plan[row['engine']]}")


def run(params: Params) -> dict[str, Any]:
    exported = stages.require(params, "01_export")
    built = stages.require(params, "03_build")
    validated = stages.require(params, "04_validate")
    x = splits_for(params, ModelIO.model_validate(exported["io"]), exported["dataset"])["val"].x
    passed = set(validated["passed"])
    gpu = hardware.gpu_info() is not None
    pricing = pricing_floor(params.min_priced_duration_s, gpu)
    if pricing["exploratory"]:
        logger.info(pricing["exploratory"])
    rows, excluded = [], []
    for entry in built["engines"]:
        if entry["name"] not in passed and not entry["baseline"]:
            excluded.append({"engine": entry["name"], "reason": "failed validation"})
            continue
        # the baseline is always confirmed, and with confirm: all every engine: in the process that searched it
        confirm_now = entry["baseline"] or params.confirm == "all"
        try:  # a fresh process per engine; a native crash there fails this engine only
            rows.append(measured_row(params, entry, x, passed, confirm_now, machine_hold(rows)))
        except ChildCrashed as e:
            excluded.append({"engine": entry["name"], "reason": f"crashed: {e}"})
            logger.info(f"{entry['name']}: crashed: {e}")
    entries = {e["name"]: e for e in built["engines"]}

    def confirm_isolated(row: dict[str, Any], hold: dict[str, Any] | None) -> dict[str, Any] | None:
        return call_isolated(confirm_engine, str(params.run_path), entries[row["engine"]], params.values(), x,
                             row["server"], hold, what=f"confirming {row['engine']}", versions=runtime_versions())

    def confirm_row(row: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return confirm_isolated(row, machine_hold(rows))
        except ChildCrashed as e:  # its searches stand; the crash is why it has no capacity
            return {"run": None, "tries": [], "skipped": [], "reason": f"not confirmed: crashed: {e}"}

    def remeasure_row(row: dict[str, Any]) -> dict[str, Any]:
        # a second look starts at the engine's own evidence: the share other confirmations held is not its own
        # (a crash here raises: with_second_look keeps the first measurement)
        if only_the_confirmation(row):
            again = {**row, "server": {**row["server"], "confirmation": confirm_isolated(row, None)},
                     "measured_again": "the confirmation only: every search found more than half Offline"}
            return judged(again, pricing["floor_s"], params.peak_tolerance)
        return judged(measured_row(params, entries[row["engine"]], x, passed), pricing["floor_s"],
                      params.peak_tolerance)

    settle(rows, confirm_row, remeasure_row, params, pricing["floor_s"])
    result = {
        "device_slug": hardware.device_slug(),
        "hardware": {"gpu": hardware.gpu_info(), "cpu": hardware.cpu_info()},  # what was measured, for the report
        "threads": usable_threads(params.threads),
        "harness": {"warmup": params.warmup, "min_repeats": params.min_repeats, "min_time_s": params.min_time_s,
                    "max_cov": params.max_cov, "timer": "time.perf_counter",
                    "isolation": "one fresh process per engine", "garbage_collection": gc_pause.DESCRIPTION,
                    "memory": "process_peak_rss_mb: peak RSS of the process that loaded only this engine; "
                              "engine_rss_mb: RSS added by loading and running it, its runtime libraries included"},
        "loadgen": {"min_duration_s": params.loadgen_min_duration_s, "min_queries": params.loadgen_min_queries,
                    "sla_p99_ms": params.sla_p99_ms, "batcher_max_batch": params.batcher_max_batch,
                    "max_queue_delay_ms": params.max_queue_delay_ms, "static_batch": params.static_batch,
                    "peak_search_runs": params.peak_search_runs, "peak_tolerance": params.peak_tolerance,
                    "peak_repeats": peak_repeats(params, gpu), "confirm_steps": params.confirm_steps,
                    "confirm": params.confirm.value, "server_duration_budget_s": params.server_duration_budget_s,
                    "sweep_max_batch": params.sweep_max_batch, "sweep_queue_delay_ms": params.sweep_queue_delay_ms,
                    "samples": feed_len(x)},
        "pricing": pricing,
        "capacity_method": CAPACITY_METHOD.format(
            sla=params.sla_p99_ms, repeats=peak_repeats(params, gpu), tol=params.peak_tolerance,
            confirm_s=confirm_duration_s(params.loadgen_min_duration_s, pricing["floor_s"]),
            scope=CONFIRM_SCOPE[params.confirm.value].format(tol=params.peak_tolerance)),
        "anomaly_rules": anomalies.RULES,
        "baseline": built["baseline"],
        "engines": rows,
        "excluded": excluded,
        "scaling": scaling(params, built, rows, x),
    }
    stages.write_result(params.run_path, "05_benchmark", result, params)
    return result
