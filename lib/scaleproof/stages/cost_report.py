"""Stage 06: price each validated engine with a confirmed capacity (the cost model is `scaleproof.cost`), and
write every figure the report states as a claim that names its source file and key."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from .. import anomalies, stages
from ..config import Params
from ..cost import (
    HOURS_PER_YEAR,
    Traffic,
    claim,
    fleet_cost,
    headline_engine,
    instance_scaling,
    load_prices,
    pick_price,
    price_engine,
    price_table_label,
    ratio_ranges,
)
from ..metrics import accuracy_rank
from ..metrics import describe as describe_metric
from ..results import BenchmarkResult, ValidateResult


def run(params: Params) -> dict[str, Any]:
    validated: ValidateResult = stages.require_typed(params, "04_validate")
    bench: BenchmarkResult = stages.require_typed(params, "05_benchmark")
    price = pick_price(load_prices(params.price_table or None), params.instance, bench.device_slug,
                       params.price_usd_per_hour)
    traffic = Traffic(params.daily_requests, params.peak_to_average, params.target_utilization, params.redundancy)
    bench_file, val_file, cost_file = "benchmark/benchmark.json", "validate/validate.json", "cost_report/cost_report.json"
    scaled = next((e for e in bench.engines if bench.scaling and e.engine == bench.scaling.engine), None)
    scaling = instance_scaling(params.accelerators_per_instance, bench.scaling,
                               scaled.capacity.qps if scaled and scaled.capacity else None)
    per_instance = scaling["accelerators_per_instance"] * scaling["factor"]
    per_instance_range = (tuple(scaling["accelerators_per_instance"] * f for f in scaling["factor_range"])
                          if scaling.get("factor_range") else None)
    # price rows are per accelerator: an instance of N accelerators costs N times the row's rate
    instance_price = replace(price, usd_per_hour=price.usd_per_hour * params.accelerators_per_instance)
    scaling["usd_per_instance_hour"] = instance_price.usd_per_hour
    priced, excluded = [], list(bench.excluded)
    for i, row in enumerate(bench.engines):
        name, v = row.engine, validated.engine(row.engine)
        if not row.validated:
            excluded.append({"engine": name, "reason": f"failed validation: {v.reason}"})
            continue
        if row.not_confirmed:  # clearly behind the leader's searches (confirm: leaders): its search figures only
            excluded.append({"engine": name, "reason": row.not_confirmed, "not_confirmed": True,
                             "search_peaks_qps": [s.peak_qps for s in (row.server.dynamic, *row.server.dynamic_repeats)]})
            continue
        if row.capacity is None:
            excluded.append({"engine": name, "reason": f"not priced: {row.capacity_reason or row.server.dynamic.reason}",
                             **({"baseline": True} if row.baseline else {})})
            continue
        cap = row.capacity
        flags = [f.model_dump() for f in row.flags] if row.flags is not None else \
            anomalies.check(row.model_dump(), params.peak_tolerance)
        priced.append({"engine": name, "backend": row.backend, "precision": row.precision,
                       "baseline": row.baseline, "batching": cap.batching, "p99_ms": cap.p99_ms,
                       "loadgen_log": cap.log_dir, "memory_mb": row.memory_mb(),
                       "gpu_reserved_mb": row.memory.get("gpu_reserved_mb"), "gpu_weights_mb": row.memory.get("gpu_weights_mb"),
                       "top1_delta_pts": v.top1_delta_pts, "top1_agreement": v.top1_agreement,
                       "accuracy": describe_metric(v.model_dump()), "flags": flags, "remeasured": row.remeasured,
                       "second_look": row.second_look,
                       "bench_index": i, **price_engine(cap, instance_price, traffic, params, per_instance,
                                                    per_instance_range)})
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
            p.update(ratio_ranges(baseline, p, lambda q: fleet_cost(q, instance_price.usd_per_hour, traffic)["annual_usd"],
                                  per_instance_range or (per_instance, per_instance)))
            claims.append(claim(f"{p['engine']}.savings", f"{p['engine']} saves {p['annual_savings_usd']:,.0f} USD a "
                                f"year against {baseline['engine']}", p["annual_savings_usd"], cost_file,
                                f"engines[{n}].annual_savings_usd"))
    # the headline engine by a stated rule: engines whose capacity ranges overlap are a tie, never a coin flip
    searches = {r.engine: [s.peak_qps for s in (r.server.dynamic, *r.server.dynamic_repeats)] for r in bench.engines}
    best = headline_engine(priced, {v.engine: accuracy_rank(v.model_dump()) for v in validated.engines}, searches)
    exploratory = bench.pricing.exploratory if bench.pricing else None
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
                        "capacity": bench.capacity_method, "sla_p99_ms": bench.loadgen.sla_p99_ms,
                        "inference": "one sample through the model", "scaling": scaling,
                        "range": "run-to-run spread of the peaks of the repeated searches "
                                 f"({bench.loadgen.peak_repeats} per engine; with one "
                                 "search, its VALID/INVALID bracket)"
                                 + ("; for an instance, times the scaling factor's range" if per_instance_range else "")
                                 + "; ratios and savings take both ends"},
        "baseline": baseline["engine"] if baseline else None,
        "best": best["engine"] if best else None,
        "best_tie": {k: best[k] for k in ("tied", "rule", "words")} if best and best["tied"] else None,
        "best_rule": best["rule"] if best else None,
        "engines": priced,
        "excluded": excluded,
        "claims": claims,
    }
    stages.write_result(params.run_path, "06_cost_report", result, params)
    return result
