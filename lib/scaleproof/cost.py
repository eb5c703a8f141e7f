"""The cost model: price rows, cost per 1M inferences, instances for a peak load, growth and price scenarios,
per-instance scaling and the ranges of ratios. Stage 06 (`stages.cost_report`) applies it to a run: only engines
that passed validation and have a confirmed capacity are priced; every claim names its file and key.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import paths
from .config import Params
from .errors import ParamsError
from .results import Capacity, Scaling

HOURS_PER_YEAR = 8760
HOURS_PER_MONTH = 730
PRICE_COLUMNS = ("id", "accelerator", "offer", "usd_per_hour", "source", "as_of", "confidence", "matches")


@dataclass(frozen=True)
class PriceRow:
    id: str
    accelerator: str
    offer: str
    usd_per_hour: float
    source: str
    as_of: str
    confidence: str
    matches: str  # substring of a device slug this row prices when instance is 'auto'


def load_prices(path: str | Path | None = None) -> list[PriceRow]:
    """Read a price table; every row must carry a positive price, a source and a date."""
    path = Path(path) if path else paths.data_dir() / "prices.csv"
    if not path.is_file():
        raise ParamsError(f"price table {path} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(PRICE_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ParamsError(f"price table {path} lacks columns {sorted(missing)}; it needs {list(PRICE_COLUMNS)}")
        rows = []
        for i, raw in enumerate(reader, start=2):
            try:
                price = float(raw["usd_per_hour"])
            except ValueError:
                raise ParamsError(f"{path} line {i}: usd_per_hour {raw['usd_per_hour']!r} is not a number") from None
            if price <= 0 or not raw["source"].strip() or not raw["as_of"].strip():
                raise ParamsError(f"{path} line {i} ({raw['id']}): needs a positive price, a source and a date")
            rows.append(PriceRow(**{**{k: raw[k].strip() for k in PRICE_COLUMNS}, "usd_per_hour": price}))
    return rows


def pick_price(rows: list[PriceRow], instance: str, device_slug: str, override_usd_per_hour: float = 0.0) -> PriceRow:
    """The row named by `instance`, or for 'auto' the first row whose `matches` is in the device slug."""
    if instance == "auto":
        found = [r for r in rows if r.matches and r.matches in device_slug]
        if not found:
            raise ParamsError(f"no price row matches device {device_slug!r}; set instance to one of "
                              f"{[r.id for r in rows]} or add a row to the price table")
        row = found[0]
    else:
        by_id = {r.id: r for r in rows}
        if instance not in by_id:
            raise ParamsError(f"instance {instance!r} is not in the price table; choose one of {sorted(by_id)}")
        row = by_id[instance]
    if override_usd_per_hour > 0:
        row = PriceRow(**{**asdict(row), "usd_per_hour": override_usd_per_hour,
                          "source": f"user override (table said {row.usd_per_hour} from {row.source})"})
    return row


def price_for_this_machine(params: Params) -> PriceRow:
    """The row 06_cost_report will price this machine at, looked up before any measuring: a GPU type the
    table lacks fails the run in seconds instead of after the benchmark. Call it in a child process on a
    GPU machine (asking torch for the GPU's name creates a CUDA context)."""
    from .hardware import device_slug

    return pick_price(load_prices(params.price_table or None), params.instance, device_slug(),
                      params.price_usd_per_hour)


def price_table_label(path: str) -> str:
    """Where the price row comes from, as a file an auditor can open: the shipped table is cited by its
    place in the repository."""
    if not path:
        return "data/prices.csv (shipped with scaleproof)"
    return str(path)


def cost_per_million(qps: float, usd_per_hour: float, utilization: float) -> float:
    """USD per 1M inferences for one instance serving `qps` at capacity, used at `utilization`."""
    return usd_per_hour / (qps * utilization * 3600) * 1e6


def instances_needed(peak_qps: float, qps: float, utilization: float, redundancy: int = 0) -> int:
    """Instances so that the peak keeps each at or under `utilization` of its capacity, plus spares."""
    return math.ceil(peak_qps / (qps * utilization) - 1e-9) + redundancy


@dataclass(frozen=True)
class Traffic:
    daily_requests: float
    peak_to_average: float
    utilization: float
    redundancy: int

    @property
    def peak_qps(self) -> float:
        return self.daily_requests / 86400 * self.peak_to_average


def fleet_cost(qps: float, usd_per_hour: float, traffic: Traffic, growth: float = 1.0) -> dict[str, Any]:
    """Instances, monthly/annual cost and unit costs for one engine at `growth` x today's traffic."""
    n = instances_needed(traffic.peak_qps * growth, qps, traffic.utilization, traffic.redundancy)
    annual = n * usd_per_hour * HOURS_PER_YEAR
    return {"instances": n, "monthly_usd": n * usd_per_hour * HOURS_PER_MONTH, "annual_usd": annual,
            "usd_per_1m": cost_per_million(qps, usd_per_hour, traffic.utilization),
            "fleet_usd_per_1m": annual / (traffic.daily_requests * growth * 365) * 1e6}


def require_positive(**values: float) -> None:
    """Refuse zero, negative or non-finite figures by name: a cost from them would be nonsense, not an error."""
    bad = [f"{k}={v!r}" for k, v in values.items()
           if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0]
    if bad:
        raise ParamsError(f"{', '.join(bad)}: must be positive, finite numbers")


def compare(base_qps: float, engine_qps: float, usd_per_hour: float, traffic: Traffic) -> dict[str, Any]:
    """The before/after of two capacities on one accelerator: what a user's own figures give."""
    require_positive(baseline_qps=base_qps, engine_qps=engine_qps, usd_per_hour=usd_per_hour,
                     peak_qps=traffic.peak_qps, utilization=traffic.utilization)
    if traffic.utilization > 1 or traffic.redundancy < 0:
        raise ParamsError(f"utilization {traffic.utilization} must lie in (0, 1] and redundancy "
                          f"{traffic.redundancy} must not be negative")
    before, after = fleet_cost(base_qps, usd_per_hour, traffic), fleet_cost(engine_qps, usd_per_hour, traffic)
    return {"peak_qps": traffic.peak_qps, "baseline": before, "engine": after,
            "annual_savings_usd": before["annual_usd"] - after["annual_usd"],
            "traffic_multiple_same_budget": before["usd_per_1m"] / after["usd_per_1m"]}


def claim(cid: str, text: str, value: float, source: str, key: str) -> dict[str, Any]:
    return {"id": cid, "text": text, "value": value, "source": source, "key": key}


def instance_scaling(accelerators: int, measured: Scaling | None, engine_qps: float | None = None) -> dict[str, Any]:
    """How per-accelerator capacity becomes per-instance capacity: the measured scaling factor where the
    benchmark measured this many devices (`measured`, benchmark.json's scaling), else linear scaling, said plainly.

    The factor multiplies the per-accelerator capacity the cost model prices, which is the in-process engine's
    (`engine_qps`, of the engine that was scaled); the benchmark's factor is taken against the worker pool on one
    device, which holds less. So the factor priced is the N-device capacity over N x `engine_qps`, its range the
    measured range moved by the same ratio, and never more than 1: an instance is never credited more than its N
    devices sustained, nor more than N times one."""
    out = {"accelerators_per_instance": accelerators, "factor": 1.0}
    if accelerators == 1:
        return {**out, "source": "one accelerator per instance: no scaling involved"}
    n = len(measured.devices) if measured else 0
    if not (measured and measured.scaling_factor and 1 < n <= accelerators):
        return {**out, "measured": False,
                "source": f"assumed linear: this run measured no scaling over {accelerators} devices (scaling_devices)"}
    where = f"benchmark/benchmark.json scaling ({n} devices, {measured.engine})"
    factor, rng = measured.scaling_factor, measured.factor_range
    words = [f"measured: {where}" if n == accelerators else
             f"measured over {n} of the instance's {accelerators} accelerators ({where}); that the factor holds "
             f"for all {accelerators} is assumed"]
    n_qps = (measured.peak_qps or {}).get(str(n))
    if engine_qps and n_qps:  # rebased from the one-device pool to the priced per-device capacity
        rebased = n_qps / (n * engine_qps)
        words.append(f"{n_qps:,.0f} QPS on {n} devices against {n} x {engine_qps:,.0f} QPS, the priced per-device "
                     f"capacity, is {rebased:.3f}; against the one-device worker pool {factor:.3f}"
                     + (f" (range {rng[0]:.3f}–{rng[1]:.3f})" if rng else ""))
        factor, rng = rebased, [r * rebased / factor for r in rng] if rng else None
    priced = min(factor, 1.0)
    if factor > 1 or (rng and rng[1] > 1):
        words.append(f"priced at {priced:.3f} (measured {factor:.3f}"
                     + (f", range {rng[0]:.3f}–{rng[1]:.3f}" if rng else "") + "): scaling above linear is not priced")
    priced_range = [min(r, 1.0) for r in rng] if rng else None
    return {**out, "factor": priced, "factor_range": priced_range if priced_range and priced_range[0] < priced_range[1]
            else None, "measured_factor": measured.scaling_factor, "measured_factor_range": measured.factor_range,
            "measured": n == accelerators, "measured_devices": n, "source": "; ".join(words)}


def price_engine(cap: Capacity, price: PriceRow, traffic: Traffic, params: Params, per_instance: float = 1.0,
                 per_instance_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """Cost of one engine now, per growth scenario and in the price scenario, with a range: from the
    run-to-run spread of repeated peak searches (or else one search's VALID/INVALID bracket), and from the
    scaling factor's range where an instance has several accelerators.
    `per_instance` turns the per-accelerator capacity into an instance's (accelerators x scaling), and
    `per_instance_range` gives its low and high case."""
    qps = cap.qps * per_instance  # benchmark.json's capacity is per accelerator (the claims cite that value)
    now = fleet_cost(qps, price.usd_per_hour, traffic)
    out = {"qps": cap.qps, "instance_qps": qps, **now}
    if cap.qps_upper or per_instance_range:
        lo_scale, hi_scale = per_instance_range or (per_instance, per_instance)
        ends = [cap.qps * lo_scale, (cap.qps_upper or cap.qps) * hi_scale]
        lo, hi = (fleet_cost(q, price.usd_per_hour, traffic) for q in ends)
        sources = [s for s in (cap.range_source if cap.qps_upper else None,
                               "the scaling factor's range" if per_instance_range else None) if s]
        out["range"] = {"source": "; ".join(sources), "qps": ends, "accelerator_qps": [cap.qps, cap.qps_upper or cap.qps],
                        "instances": [hi["instances"], lo["instances"]],
                        "annual_usd": [hi["annual_usd"], lo["annual_usd"]],
                        "usd_per_1m": [hi["usd_per_1m"], lo["usd_per_1m"]]}
    out["scenarios"] = [{"growth": g, **fleet_cost(qps, price.usd_per_hour, traffic, g)} for g in params.growth]
    out["price_scenario"] = {"price_change": params.price_change,
                             **fleet_cost(qps, price.usd_per_hour * (1 + params.price_change), traffic)}
    if params.revenue_per_1k > 0:
        revenue = traffic.daily_requests * 365 / 1000 * params.revenue_per_1k
        out["cost_share_of_revenue"] = now["annual_usd"] / revenue
    return out


def ratio_ranges(baseline: dict[str, Any], engine: dict[str, Any], annual_usd_at: Callable[[float], float],
                 scales: tuple[float, float]) -> dict[str, Any]:
    """The low and high case of an engine against the baseline from both capacity ranges: the speed-up and the
    savings at the engine's low end against the baseline's high end, and the other way round. The instance's
    scaling (`scales`: its low and high per-instance multiple) applies to both engines alike: it cancels from the
    speed-up, and the savings take the worse and the better of its two ends, with the same scale for both.
    `annual_usd_at(instance_qps)` is the fleet's annual cost at that capacity per instance."""
    def ends(p: dict[str, Any]) -> tuple[float, float]:  # per accelerator: confirmed, and the range's top
        return p["qps"], (p.get("range") or {}).get("accelerator_qps", [p["qps"]] * 2)[1]
    (b_lo, b_hi), (e_lo, e_hi) = ends(baseline), ends(engine)
    return {"speedup_range": [e_lo / b_hi, e_hi / b_lo],
            "annual_savings_range": [min(annual_usd_at(b_hi * s) - annual_usd_at(e_lo * s) for s in scales),
                                     max(annual_usd_at(b_lo * s) - annual_usd_at(e_hi * s) for s in scales)]}


HEADLINE_RULE = ("the engine with the highest confirmed capacity (the leader), unless another engine's measured span "
                 "overlaps the leader's: a span runs from the confirmed capacity to the highest VALID peak of the "
                 "engine's repeated searches (never an INVALID target), and a tie needs at least "
                 "2 searches of each engine; ties are judged against the leader only, not from engine to engine; "
                 "the tie goes to the more accurate against FP32 (the run's metric, then the smaller output error; "
                 "an engine without an accuracy record ranks last), then the cheaper per 1M inferences, then the name")
MIN_TIE_SEARCHES = 2  # one search's spread says nothing about run-to-run variation


def capacity_span(priced: dict[str, Any], peaks: list[float | None] | None = None) -> tuple[float, float]:
    """An engine's confirmed capacity per accelerator and the highest VALID peak of its searches (the same where
    there is none above it)."""
    valid = [p for p in peaks or () if p is not None]
    return priced["qps"], max([priced["qps"], *valid])


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def headline_engine(priced: list[dict[str, Any]], accuracy: dict[str, tuple[float, ...]],
                    peaks: dict[str, list[float | None]] | None = None) -> dict[str, Any] | None:
    """The engine a run's headline names, by HEADLINE_RULE, and the engines tied with the leader: repeated runs
    whose fastest engines swap places inside their measured spread name the same engine or the same tie, not
    whichever came out on top this time. `accuracy` ranks engines, larger is more accurate; `peaks` holds each
    engine's VALID peaks of its repeated Server searches (an engine without them cannot tie)."""
    if not priced:
        return None
    peaks = peaks or {}
    fastest = max(priced, key=lambda p: (p["qps"], p["engine"]))

    def searched(p: dict[str, Any]) -> bool:
        return sum(q is not None for q in peaks.get(p["engine"]) or ()) >= MIN_TIE_SEARCHES

    def span(p: dict[str, Any]) -> tuple[float, float]:
        return capacity_span(p, peaks.get(p["engine"]))

    tied = [p for p in priced if p is fastest or (searched(p) and searched(fastest) and overlap(span(p), span(fastest)))]

    def rank(p: dict[str, Any]) -> tuple[Any, ...]:
        known = p["engine"] in accuracy and accuracy[p["engine"]] is not None
        return (not known, tuple(-a for a in accuracy.get(p["engine"]) or ()), p["usd_per_1m"], p["engine"])
    chosen = min(tied, key=rank)
    if len(tied) == 1:
        return {"engine": chosen["engine"], "tied": [], "rule": HEADLINE_RULE, "words": None}
    spans = ", ".join(f"{p['engine']} {span(p)[0]:,.0f}–{span(p)[1]:,.0f} QPS"
                      for p in sorted(tied, key=lambda p: -p["qps"]))
    words = (f"tie: the confirmed capacity ranges of {spans} (confirmed to the highest VALID peak of "
             f"{MIN_TIE_SEARCHES} or more searches each) overlap the leader {fastest['engine']}'s, so none is faster "
             f"beyond the measured spread; {chosen['engine']} is named by the rule (the more accurate against FP32, "
             "then the cheaper per 1M)")
    return {"engine": chosen["engine"], "tied": sorted(p["engine"] for p in tied), "rule": HEADLINE_RULE,
            "words": words}
