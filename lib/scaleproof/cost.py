"""Stage 06 (numbers): price each validated engine from its measured capacity.

Only engines that passed validation and have a valid measured capacity are priced; every other
engine is listed with the reason it was excluded. Every claim names the file and the key it comes from.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from . import anomalies, paths, stages
from .config import Params
from .errors import ParamsError
from .metrics import describe as describe_metric
from .results import BenchmarkResult, Capacity, Scaling, ValidateResult

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


def instance_scaling(accelerators: int, measured: Scaling | None) -> dict[str, Any]:
    """How per-accelerator capacity becomes per-instance capacity: the measured scaling factor where the
    benchmark measured this many devices (`measured`, benchmark.json's scaling), else linear scaling, said plainly."""
    out = {"accelerators_per_instance": accelerators, "factor": 1.0}
    if accelerators == 1:
        return {**out, "source": "one accelerator per instance: no scaling involved"}
    n = len(measured.devices) if measured else 0
    if measured and measured.scaling_factor and 1 < n <= accelerators:
        where = f"benchmark/benchmark.json scaling ({n} devices, {measured.engine})"
        return {**out, "factor": measured.scaling_factor, "factor_range": measured.factor_range,
                "measured": n == accelerators, "measured_devices": n,
                "source": f"measured: {where}" if n == accelerators else
                f"measured over {n} of the instance's {accelerators} accelerators ({where}); that the factor holds "
                f"for all {accelerators} is assumed"}
    return {**out, "measured": False,
            "source": f"assumed linear: this run measured no scaling over {accelerators} devices (scaling_devices)"}


def price_engine(cap: Capacity, price: PriceRow, traffic: Traffic, params: Params,
                 per_instance: float = 1.0) -> dict[str, Any]:
    """Cost of one engine now, per growth scenario and in the price scenario, with a range: from the
    run-to-run spread of repeated peak searches, or else from one search's VALID/INVALID bracket.
    `per_instance` turns the per-accelerator capacity into an instance's (accelerators x scaling)."""
    qps = cap.qps * per_instance  # benchmark.json's capacity is per accelerator (the claims cite that value)
    now = fleet_cost(qps, price.usd_per_hour, traffic)
    out = {"qps": cap.qps, "instance_qps": qps, **now}
    if cap.qps_upper:
        qps_upper = cap.qps_upper * per_instance
        hi = fleet_cost(qps_upper, price.usd_per_hour, traffic)
        out["range"] = {"source": cap.range_source, "qps": [qps, qps_upper],
                        "instances": [hi["instances"], now["instances"]],
                        "annual_usd": [hi["annual_usd"], now["annual_usd"]],
                        "usd_per_1m": [hi["usd_per_1m"], now["usd_per_1m"]]}
    out["scenarios"] = [{"growth": g, **fleet_cost(qps, price.usd_per_hour, traffic, g)} for g in params.growth]
    out["price_scenario"] = {"price_change": params.price_change,
                             **fleet_cost(qps, price.usd_per_hour * (1 + params.price_change), traffic)}
    if params.revenue_per_1k > 0:
        revenue = traffic.daily_requests * 365 / 1000 * params.revenue_per_1k
        out["cost_share_of_revenue"] = now["annual_usd"] / revenue
    return out


def ratio_ranges(baseline: dict[str, Any], engine: dict[str, Any]) -> dict[str, Any]:
    """The low and high case of an engine against the baseline from both capacity ranges: the speed-up and the
    savings at the engine's low end against the baseline's high end, and the other way round."""
    def ends(p: dict[str, Any]) -> tuple[tuple[float, float], tuple[float, float]]:
        r = p.get("range")
        return ((r["qps"][0], r["qps"][1]), (r["annual_usd"][1], r["annual_usd"][0])) if r else \
            ((p["instance_qps"], p["instance_qps"]), (p["annual_usd"], p["annual_usd"]))
    (b_lo, b_hi), (b_cost_lo_cap, b_cost_hi_cap) = ends(baseline)
    (e_lo, e_hi), (e_cost_lo_cap, e_cost_hi_cap) = ends(engine)
    return {"speedup_range": [e_lo / b_hi, e_hi / b_lo],
            "annual_savings_range": [b_cost_hi_cap - e_cost_lo_cap, b_cost_lo_cap - e_cost_hi_cap]}


def run(params: Params) -> dict[str, Any]:
    validated: ValidateResult = stages.require_typed(params, "04_validate")
    bench: BenchmarkResult = stages.require_typed(params, "05_benchmark")
    price = pick_price(load_prices(params.price_table or None), params.instance, bench.device_slug,
                       params.price_usd_per_hour)
    traffic = Traffic(params.daily_requests, params.peak_to_average, params.target_utilization, params.redundancy)
    bench_file, val_file, cost_file = "benchmark/benchmark.json", "validate/validate.json", "cost_report/cost_report.json"
    scaling = instance_scaling(params.accelerators_per_instance, bench.scaling)
    per_instance = scaling["accelerators_per_instance"] * scaling["factor"]
    # price rows are per accelerator: an instance of N accelerators costs N times the row's rate
    instance_price = replace(price, usd_per_hour=price.usd_per_hour * params.accelerators_per_instance)
    scaling["usd_per_instance_hour"] = instance_price.usd_per_hour
    priced, excluded = [], list(bench.excluded)
    for i, row in enumerate(bench.engines):
        name, v = row.engine, validated.engine(row.engine)
        if not row.validated:
            excluded.append({"engine": name, "reason": f"failed validation: {v.reason}"})
            continue
        if row.capacity is None:
            excluded.append({"engine": name, "reason": f"not priced: {row.capacity_reason or row.server['dynamic']['reason']}"})
            continue
        cap = row.capacity
        flags = [f.model_dump() for f in row.flags] if row.flags is not None else \
            anomalies.check(row.model_dump(), params.peak_tolerance)
        priced.append({"engine": name, "backend": row.backend, "precision": row.precision,
                       "baseline": row.baseline, "batching": cap.batching, "p99_ms": cap.p99_ms,
                       "loadgen_log": cap.log_dir, "memory_mb": row.memory_mb(),
                       "top1_delta_pts": v.top1_delta_pts, "top1_agreement": v.top1_agreement,
                       "accuracy": describe_metric(v.model_dump()), "flags": flags, "remeasured": row.remeasured,
                       "bench_index": i, **price_engine(cap, instance_price, traffic, params, per_instance)})
    baseline = next((p for p in priced if p["baseline"]), None)
    claims = []
    for n, p in enumerate(priced):
        k = f"engines[{p['bench_index']}].capacity"
        claims.append(claim(f"{p['engine']}.qps", f"{p['engine']} sustains {p['qps']:,.0f} queries/s in a VALID "
                            f"LoadGen Server run (P99 {p['p99_ms']:.3f} ms)", p["qps"], bench_file, f"{k}.qps"))
        claims.append(claim(f"{p['engine']}.p99", f"{p['engine']} P99 latency {p['p99_ms']:.3f} ms at its confirmed Server QPS",
                            p["p99_ms"], bench_file, f"{k}.p99_ms"))
        vi = next(j for j, r in enumerate(validated.engines) if r.engine == p["engine"])
        v = validated.engines[vi]
        if v.metric == "top1":
            claims.append(claim(f"{p['engine']}.top1", f"{p['engine']} top-1 {100 * v.top1:.2f}% "
                                f"({p['top1_delta_pts']:+.2f} pt vs FP32)", v.top1, val_file, f"engines[{vi}].top1"))
        elif v.metric == "agreement":
            claims.append(claim(f"{p['engine']}.agreement", f"{p['engine']} agrees with FP32 on "
                                f"{100 * p['top1_agreement']:.2f}% of top-1 predictions", p["top1_agreement"], val_file,
                                f"engines[{vi}].top1_agreement"))
        elif v.metric == "cosine":
            claims.append(claim(f"{p['engine']}.cosine", f"{p['engine']} outputs have mean cosine "
                                f"{v.cosine_mean:.4f} to FP32", v.cosine_mean, val_file, f"engines[{vi}].cosine_mean"))
        elif v.metric == "user":
            claims.append(claim(f"{p['engine']}.score", f"{p['engine']} scores {v.score:.4g} on the user metric "
                                f"(FP32 {v.ref_score:.4g})", v.score, val_file, f"engines[{vi}].score"))
        claims.append(claim(f"{p['engine']}.output_err", f"{p['engine']} output error vs FP32 {v.output_err:.3g}",
                            v.output_err, val_file, f"engines[{vi}].output_err"))
        claims.append(claim(f"{p['engine']}.instances", f"{p['engine']} needs {p['instances']} instances for "
                            f"{traffic.peak_qps:,.0f} QPS peak (N+{traffic.redundancy})", p["instances"], cost_file,
                            f"engines[{n}].instances"))
        claims.append(claim(f"{p['engine']}.annual", f"{p['engine']} fleet costs {p['annual_usd']:,.0f} USD a year",
                            p["annual_usd"], cost_file, f"engines[{n}].annual_usd"))
        if baseline and p is not baseline:
            p["speedup_vs_baseline"] = p["qps"] / baseline["qps"]
            p["annual_savings_usd"] = baseline["annual_usd"] - p["annual_usd"]
            p["traffic_multiple_same_budget"] = baseline["usd_per_1m"] / p["usd_per_1m"]
            p.update(ratio_ranges(baseline, p))
            claims.append(claim(f"{p['engine']}.savings", f"{p['engine']} saves {p['annual_savings_usd']:,.0f} USD a "
                                f"year against {baseline['engine']}", p["annual_savings_usd"], cost_file,
                                f"engines[{n}].annual_savings_usd"))
    best = max(priced, key=lambda p: p["qps"]) if priced else None
    exploratory = (bench.pricing or {}).get("exploratory")
    result = {
        "status": exploratory or ("priced" if priced else "nothing priced: no engine has a confirmed capacity"),
        "exploratory": bool(exploratory),
        "measured_hardware": bench.hardware,
        "price": {**asdict(price), "table": price_table_label(params.price_table)},
        "anomaly_rules": anomalies.RULES,
        "assumptions": {"daily_requests": params.daily_requests, "peak_to_average": params.peak_to_average,
                        "peak_qps": traffic.peak_qps, "target_utilization": params.target_utilization,
                        "redundancy": params.redundancy, "growth": params.growth, "price_change": params.price_change,
                        "revenue_per_1k": params.revenue_per_1k, "hours_per_year": HOURS_PER_YEAR,
                        "capacity": bench.capacity_method, "sla_p99_ms": bench.loadgen["sla_p99_ms"],
                        "inference": "one sample through the model", "scaling": scaling,
                        "range": "run-to-run spread of the peaks of the repeated searches "
                                 f"({bench.loadgen.get('peak_repeats', params.peak_repeats)} per engine; with one "
                                 "search, its VALID/INVALID bracket); ratios and savings take both ends"},
        "baseline": baseline["engine"] if baseline else None,
        "best": best["engine"] if best else None,
        "engines": priced,
        "excluded": excluded,
        "claims": claims,
    }
    stages.write_result(params.run_path, "06_cost_report", result, params)
    return result
