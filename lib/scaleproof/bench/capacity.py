"""From Server peak searches to the capacity the cost model may price.

A peak search is exploration: short LoadGen runs, doubling then bisecting. What may be priced is a
confirmed rate: one longer run (at least `CONFIRM_FACTOR` x the search's duration and the pricing
floor) at the lowest peak the repeated searches found must be VALID; while it is not, the target steps
down in widening steps (`step_targets`). The capacity is what LoadGen achieved in that VALID run, never a target.
The batcher sweep picks, per engine, the (max batch, queue delay) whose search found the highest peak.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

CONFIRM_FACTOR = 5  # a confirmation run lasts at least 5x one search run
FLOOR_S = {"cpu": 10.0, "gpu": 30.0}  # default floor of a priced LoadGen run per device kind


def confirm_duration_s(search_duration_s: float, floor_s: float) -> float:
    """How long a confirmation run lasts: at least CONFIRM_FACTOR search runs and the pricing floor."""
    return max(CONFIRM_FACTOR * search_duration_s, floor_s)


def default_floor_s(gpu: bool) -> float:
    return FLOOR_S["gpu" if gpu else "cpu"]


def pricing_floor(min_priced_duration_s: float, gpu: bool) -> dict[str, Any]:
    """The floor a priced run must reach, and whether the run is exploratory (its floor talked below the default)."""
    default = default_floor_s(gpu)
    floor = min_priced_duration_s or default
    exploratory = None
    if floor < default:
        exploratory = (f"exploratory, not priced: min_priced_duration_s={floor:g} s is under the {default:g} s floor "
                       f"for a {'GPU' if gpu else 'CPU'}; its figures are for exploring only")
    return {"floor_s": floor, "default_floor_s": default, "exploratory": exploratory}


def step_targets(peak_qps: float, tolerance: float, steps: int) -> list[float]:
    """The confirmation targets: the peak, then down by tolerance, 2x, 4x ... tolerance (never under a quarter):
    a 30 s run can fail well below what 1 s runs found, so the steps widen rather than crawl."""
    targets = [peak_qps * max(1 - (tolerance * 2 ** (k - 1) if k else 0), 0.25) for k in range(steps)]
    return list(dict.fromkeys(targets))  # the quarter floor repeated is one run, not several


# a confirmation whose P99 ended above this multiple of the SLA was overloaded (its queue grew through the
# run), not at the edge: the next rung would fail as well, so it is skipped (2-core machine, 2026-11-26:
# runs at P99 31-338 ms failed again one rung lower in 7 of 9 cases). Once per confirmation: a second skip jumps
# from 90% to 60% of the peak, and ONNX Runtime INT8 was confirmed at 60% where 80% held in its second look
# (`make run`, 2026-11-26: 44,135 QPS, flagged under half its Offline and measured again; then 58,498 VALID)
OVERLOAD_P99_FACTOR = 2.0


def confirm(run_at: Callable[[float], dict[str, Any]], peak_qps: float, tolerance: float, steps: int,
            sla_p99_ms: float | None = None) -> dict[str, Any]:
    """Run at `peak_qps`; while INVALID, step down (`step_targets`), at most `steps` runs in all. With the SLA
    given, the first overloaded run (P99 above OVERLOAD_P99_FACTOR x SLA) skips the next rung of the ladder."""
    tries: list[dict[str, Any]] = []
    targets = step_targets(peak_qps, tolerance, steps)
    k, skipped = 0, []
    while k < len(targets) and len(tries) < steps:
        r = run_at(targets[k])
        tries.append(r)
        if r["valid"]:
            stepped = f", {len(tries) - 1} step(s) down from {peak_qps:,.0f}" if len(tries) > 1 else ""
            if skipped:
                stepped += f" (not tried after an overloaded run: {', '.join(f'{q:,.0f}' for q in skipped)} QPS)"
            return {"run": r, "tries": tries, "skipped": skipped,
                    "reason": f"VALID at {targets[k]:,.0f} QPS target{stepped}"}
        overloaded = sla_p99_ms is not None and (r.get("p99_ms") or 0) > OVERLOAD_P99_FACTOR * sla_p99_ms
        if overloaded and not skipped and k + 2 < len(targets):
            skipped.append(targets[k + 1])
            k += 2
        else:
            k += 1
    return {"run": None, "tries": tries, "skipped": skipped,
            "reason": f"not confirmed: {len(tries)} longer run(s) from {peak_qps:,.0f} down to "
                      f"{tries[-1]['target_qps']:,.0f} QPS were INVALID ({tries[-1]['reason'][:120]})"}


def searches_of(server: dict[str, Any]) -> list[dict[str, Any]]:
    """The chosen batcher's peak search and its repeats."""
    return [server["dynamic"], *server.get("dynamic_repeats", [])]


def ladder_start(searches: list[dict[str, Any]]) -> tuple[float, str]:
    """Where the confirmation ladder starts: the highest rate every repeated search vouched for, i.e. at or under
    every search's peak and under any rate that any search saw INVALID there (a peak one search found above
    another's INVALID run was luck, not a rate the engine holds). A run only the latency bound held (early stopping
    over the duration budget) is no evidence either way."""
    low = min(s["peak_qps"] for s in searches)
    runs = [r for s in searches for r in s["runs"]]
    invalid_under = [r["target_qps"] for r in runs if not r["valid"] and r["target_qps"] <= low
                     and not (r.get("extra") or {}).get("latency_held")]
    if not invalid_under:
        return low, (f"the lowest of {len(searches)} search peaks" if len(searches) > 1 else "the search's peak")
    under = min(invalid_under)
    vouched = [r["target_qps"] for r in runs if r["valid"] and r["target_qps"] < under]
    start = max(vouched, default=under * 0.5)
    return start, (f"the highest VALID search rate under {under:,.0f} QPS, where a search run was INVALID below the "
                   f"lowest peak {low:,.0f} QPS")


HOLD_FLOOR = 0.8  # a ladder never starts under 80% of its own searches' evidence on account of other engines


def machine_hold(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What this run's confirmations so far held of their searches' evidence (the VALID target over `ladder_start`),
    the lowest of them, never under HOLD_FLOOR; None where every one held its evidence. A machine that holds less
    over a confirmation's 10 s than over a search's half second does so for every engine it serves (2-core Xeon,
    `make run` 2026-12-08: the baseline held 80% and ONNX Runtime FP32 then held 80% of its own at the first rung),
    so a later ladder starts there instead of stepping down to it again. Only ladders that started at their own
    evidence count: one started at a share of it would compound the share."""
    held = []
    for r in rows:
        conf = (r.get("server") or {}).get("confirmation") or {}
        if conf.get("run") and conf.get("evidence_qps") and conf.get("start_qps") == conf["evidence_qps"]:
            held.append((conf["run"]["target_qps"] / conf["evidence_qps"], r["engine"]))
    below = [h for h in held if h[0] < 1 - 1e-9]
    if not below:
        return None
    ratio, engine = min(below)
    floored = f" (a ladder starts at {HOLD_FLOOR:.0%} at the lowest)" if ratio < HOLD_FLOOR else ""
    return {"ratio": max(ratio, HOLD_FLOOR),
            "why": f"{engine}'s confirmation held {ratio:.0%} of its searches' evidence on this machine in this "
                   f"run{floored}"}


def search_span(server: dict[str, Any]) -> tuple[float, float] | None:
    """An engine's search range: its lowest peak, and the highest rate it may hold (the highest peak, or the
    lowest INVALID rate above an open bracket; unbounded where a search saw no INVALID rate above its peak).
    None where a search found no VALID rate."""
    searches = searches_of(server)
    if any(s["peak_qps"] is None for s in searches):
        return None
    top = math.inf if any(lowest_invalid_above(s) is None for s in searches) else upper_bound(searches, 0.0)
    return min(s["peak_qps"] for s in searches), top


def confirm_plan(rows: list[dict[str, Any]], tolerance: float, scope: str) -> dict[str, str | None]:
    """Which engines a confirmation run is for: engine -> None (confirm it) or why not.

    With scope 'all', every engine with a search peak. With 'leaders': the baseline, and every engine whose search
    range reaches the leader's lowest peak less `tolerance`; the leader is the engine (validated, not already
    refused by its own confirmation) with the highest lowest peak. An engine whose highest search peak lies below
    the leader's lowest by more than `tolerance` cannot change which engine leads: 'not confirmed: behind <leader>
    by N%'. Re-planned after each confirmation, so an engine behind a leader that then fails its own is confirmed."""
    spans = {r["engine"]: search_span(r["server"]) for r in rows}
    refused = {r["engine"] for r in rows if r["server"].get("confirmation") and r["server"]["confirmation"]["run"] is None}
    contenders = [r for r in rows if spans[r["engine"]] and r["validated"] and r["engine"] not in refused]
    leader = max(contenders, key=lambda r: (spans[r["engine"]][0], r["engine"]), default=None)
    plan: dict[str, str | None] = {}
    for r in rows:
        span = spans[r["engine"]]
        if span is None:
            plan[r["engine"]] = "no search peak to confirm"
        elif scope == "all" or r["baseline"] or leader is None or r is leader:
            plan[r["engine"]] = None
        else:
            lead_low = spans[leader["engine"]][0]
            behind = 1 - span[1] / lead_low
            plan[r["engine"]] = None if behind <= tolerance else (
                f"not confirmed: behind {leader['engine']} by {behind:.0%} (its search range tops at {span[1]:,.0f} QPS, "
                f"{leader['engine']}'s lowest {lead_low:,.0f} QPS; confirm: all prices it)")
    return plan


def capacity(server: dict[str, Any], floor_s: float) -> tuple[dict[str, Any] | None, str]:
    """What the cost model may use, or None and why not.

    Priced: the achieved QPS of the VALID confirmation run, if that run lasted at least `floor_s`.
    Range: the run-to-run spread of the repeated searches' peaks (with one search, its VALID/INVALID bracket)."""
    searches = searches_of(server)
    missing = [i for i, s in enumerate(searches) if s["peak_qps"] is None]
    if missing:
        return None, f"no VALID Server run in search {missing[0] + 1}: {searches[missing[0]]['reason']}"
    conf = server.get("confirmation")
    if not conf or conf["run"] is None:
        return None, conf["reason"] if conf else "no confirmation run"
    run = conf["run"]
    if run["min_duration_s"] < floor_s:
        return None, (f"exploratory, not priced: the confirmation run lasted {run['min_duration_s']:g} s, under the "
                      f"{floor_s:g} s floor for a priced figure")
    peaks = [s["peak_qps"] for s in searches]
    out = {"qps": run["qps"], "target_qps": run["target_qps"], "p99_ms": run["p99_ms"], "log_dir": run["log_dir"],
           "batching": run["batching"], "duration_s": run["min_duration_s"], "queries": run["queries"],
           "confirmation": conf["reason"], "peaks": peaks,
           "qps_upper": upper_bound(searches, run["qps"]),
           "range_source": (f"run-to-run spread of {len(peaks)} peak searches and their lowest INVALID target"
                            if len(searches) > 1 else
                            "one peak search: between its highest VALID and lowest INVALID target")}
    return out, f"confirmed: {conf['reason']}"


def lowest_invalid_above(search: dict[str, Any]) -> float | None:
    above = [r["target_qps"] for r in search["runs"] if not r["valid"] and r["target_qps"] > search["peak_qps"]]
    return min(above, default=None)


def upper_bound(searches: list[dict[str, Any]], confirmed_qps: float) -> float:
    """The high end of a capacity: the highest peak any search found, or, where the searches stopped before
    their bracket closed, the lowest rate any of them saw INVALID (the true peak may lie anywhere below it)."""
    invalid = [x for s in searches if (x := lowest_invalid_above(s)) is not None]
    return max(max(s["peak_qps"] for s in searches), min(invalid, default=0.0), confirmed_qps)


def repeat_start(start_qps: float, k: int, repeats: int) -> float:
    """Search k of `repeats` starts 2^(k/repeats) higher: the searches' doubling grids interleave, so a peak
    that only ever lands on one grid point shows up as a spread instead of as agreement."""
    return start_qps * 2 ** (k / repeats)


def batcher_grid(max_batches: list[int], delays_ms: list[float], default: tuple[int, float]) -> list[tuple[int, float]]:
    """The (max batch, queue delay) pairs to sweep: the grid of both lists, the profile's own pair first."""
    grid = list(itertools.product(max_batches or [default[0]], delays_ms or [default[1]]))
    return [default, *[g for g in grid if g != default]]


def choose_batcher(sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """The swept configuration whose search found the highest VALID peak (the profile's own on a tie)."""
    found = [s for s in sweep if s["search"]["peak_qps"] is not None]
    if not found:
        return sweep[0]
    return max(found, key=lambda s: s["search"]["peak_qps"])  # max keeps the first of equals: the default
