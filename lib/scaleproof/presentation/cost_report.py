"""Stage 06's presentation: the headline, the priced engines, anomalies, methodology, scenarios and the claims."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..results import BenchmarkResult, CalibrateResult, CostReport, ExportResult, PricedEngine, ValidateResult
from .benchmark import batcher_words, pricing_words
from .calibrate import adjusted_words, int8_markdown, tables_markdown
from .common import bench_hardware, fmt_money, measured_on, published_path


def summary_markdown(cost: CostReport, validated: ValidateResult, exported: ExportResult,
                     calibrated: CalibrateResult | None = None, benchmarked: BenchmarkResult | None = None) -> str:
    """The key claims, up front, each with the file it comes from."""
    a = cost.assumptions
    lines = [f"## Key results: `{exported.model}` measured on {measured_on(bench_hardware(cost))}", ""]
    if cost.exploratory:
        lines += [f"> **EXPLORATORY RUN, NOT PRICED.** {cost.status.removeprefix('exploratory, not priced: ')}. The figures below "
                  "show how the chain works; do not use them as a price.", ""]
    base = next((e for e in cost.engines if e.baseline), None)
    best = next((e for e in cost.engines if e.engine == cost.best), None)
    if base and best and best is not base:
        lines += [
            f"- **Capacity per accelerator (confirmed Server QPS at P99 ≤ {a.sla_p99_ms:g} ms):** "
            f"{base.qps:,.0f} → **{best.qps:,.0f} queries/s** "
            f"({best.speedup_vs_baseline:.2f}×{ratio_range(base, best)}), `{base.engine}` → `{best.engine}` "
            f"(P99 {base.p99_ms:.3f} → {best.p99_ms:.3f} ms)"
            + (f"; per instance of {a.scaling.accelerators_per_instance}: {base.instance_qps:,.0f} → "
               f"**{best.instance_qps:,.0f} queries/s**" if a.scaling and a.scaling.accelerators_per_instance > 1
               else "") + ". *Source: benchmark/benchmark.json*",
            f"- **Unit cost:** {fmt_money(base.usd_per_1m)} → **{fmt_money(best.usd_per_1m)} per 1M inferences** "
            f"at {a.target_utilization:.0%} utilization; the same budget serves "
            f"**{best.traffic_multiple_same_budget:.2f}×** the traffic. *Source: cost_report/cost_report.json*",
            f"- **Fleet for {a.peak_qps:,.0f} QPS peak (N+{a.redundancy}):** "
            f"{base.instances} → **{best.instances}** instances, annual cost {fmt_money(base.annual_usd)} → "
            f"{fmt_money(best.annual_usd)} (saves {fmt_money(best.annual_savings_usd)}/year"
            + (f"; low–high case {fmt_money(best.annual_savings_range[0])}–"
               f"{fmt_money(best.annual_savings_range[1])} from both capacities' ranges"
               + (" and the scaling factor's" if a.scaling and a.scaling.factor_range else "")
               if best.annual_savings_range else "")
            + "). *Source: cost_report/cost_report.json*",
        ]
    elif base and len(cost.engines) > 1:  # the baseline heads a tie: no engine is faster beyond the spread
        lines.append(f"- **No engine is faster than the baseline `{base.engine}` beyond the measured spread:** "
                     f"{base.qps:,.0f} queries/s at P99 {base.p99_ms:.3f} ms, {fmt_money(base.usd_per_1m)} per 1M "
                     "inferences. *Source: cost_report/cost_report.json*")
    elif base:
        lines.append(f"- Only the baseline `{base.engine}` could be priced: {base.qps:,.0f} inferences/s, "
                     f"{fmt_money(base.usd_per_1m)} per 1M.")
    elif best:  # engines priced, the baseline not: their figures stand, no ratio against the baseline does
        why = next((x.reason for x in cost.excluded if (x.model_extra or {}).get("baseline")), None)
        lines.append(f"- **The baseline could not be priced**{f' ({why})' if why else ''}: no speed-up or saving "
                     f"against it is claimed. Headline engine `{best.engine}`: {best.qps:,.0f} queries/s at P99 "
                     f"{best.p99_ms:.3f} ms, {fmt_money(best.usd_per_1m)} per 1M inferences. "
                     "*Source: cost_report/cost_report.json*")
    else:
        lines.append("- **No engine could be priced**: see the excluded engines below.")
    if cost.best_tie:
        lines.append(f"- **Tie, not a winner:** {cost.best_tie.words}. *Source: cost_report/cost_report.json*")
    gate = ", ".join(f"{k} {v}" for k, v in validated.gate.items())
    if validated.reference_degenerate:
        lines.append(f"- **The FP32 reference is degenerate ({validated.reference_degenerate}):** no accuracy result "
                     "can be claimed for any engine. *Source: validate/validate.json*")
    for e in cost.engines:
        if not e.baseline:
            lines.append(f"- **Accuracy ({validated.metric_words}):** `{e.engine}` "
                         f"{e.accuracy} (gate: {gate}). *Source: validate/validate.json*")
    if calibrated and calibrated.int8_onnx:
        lines.append(int8_markdown(calibrated, benchmarked))
        if calibrated.embedding_tables and calibrated.embedding_tables.get("tables"):
            lines.append(f"- **Embedding tables:** {tables_markdown(calibrated)} *Source: calibrate/calibrate.json*")
    if calibrated and calibrated.adjusted:
        lines.append(f"- **Adjusted parameters:**{adjusted_words(calibrated)} *Source: calibrate/calibrate.json*")
    sc = a.scaling
    if sc.accelerators_per_instance > 1:
        rng = sc.factor_range
        lines.append(f"- **{sc.accelerators_per_instance} accelerators per instance**, scaling factor "
                     f"{sc.factor:.3f}" + (f" (range {rng[0]:.3f}–{rng[1]:.3f})" if rng else "")
                     + f" — {sc.source}." + ("" if sc.measured else
                     " **Scaling beyond what was measured is an assumption here, not a measurement.**"))
    for e in cost.engines:
        again = f" (still flagged after a second look at {e.remeasured.what or 'the whole engine'})" if e.remeasured \
            else (f" (no second look: {e.second_look})" if e.second_look else "")
        for f in e.flags or []:
            lines.append(f"- **⚠ `{e.engine}` is priced with a flag{again}: {cost.anomaly_rules[f.rule]} "
                         f"({f.detail}).** *Source: benchmark/benchmark.json*")
    behind = [x for x in cost.excluded if x.reason.startswith("not confirmed: behind")]
    for x in behind:
        lines.append(f"- `{x.engine}` {x.reason}: searched, not priced. *Source: benchmark/benchmark.json*")
    if cost.excluded:
        lines.append(f"- **Excluded from the claims:** {', '.join(x.engine for x in cost.excluded)} (reasons below).")
    p = cost.price
    lines += ["", f"Priced as **{p.offer}** ({p.accelerator}), {p.usd_per_hour} USD/h (source: {p.source}, "
              f"as of {p.as_of}, confidence {p.confidence}; row `{p.id}` of {p.table}). Accuracy metric: {validated.metric_words}, "
              f"on output `{validated.judged_output}` over {validated.samples} validation samples."]
    return "\n".join(lines)


def engines_table(cost: CostReport) -> pd.DataFrame:
    rows = [{
        "engine": e.engine, "confirmed Server QPS": f"{e.qps:,.0f}",
        "P99 ms": f"{e.p99_ms:.3f}", "peak memory MB (GPU allocated, else RSS)": f"{e.memory_mb:,.0f}",
        **({"GPU reserved MB": f"{e.gpu_reserved_mb:,.0f}", "GPU weights MB": f"{e.gpu_weights_mb:,.0f}"}
           if e.gpu_reserved_mb is not None and e.gpu_weights_mb is not None else {}),
        "accuracy vs FP32": e.accuracy,
        "USD per 1M": f"{e.usd_per_1m:.4g}", "instances": f"{int(e.instances):,d}",
        "annual USD": f"{e.annual_usd:,.0f}",
        "speed-up": ("1.00×" if e.baseline else "n/a: no priced baseline"
                     if e.speedup_vs_baseline is None else f"{e.speedup_vs_baseline:.2f}×"),
        "flags": ", ".join(f.rule for f in e.flags or []) or "none",
    } for e in cost.engines]
    return pd.DataFrame(rows).set_index("engine") if rows else pd.DataFrame()


def ratio_range(base: PricedEngine, best: PricedEngine) -> str:
    """The headline ratio as a range where the cost model has one (both capacities' ranges, low and high case)."""
    r = best.speedup_range
    return f"; range {r[0]:.2f}–{r[1]:.2f}×" if r else ""


def anomalies_table(cost: CostReport) -> pd.DataFrame:
    """Every priced engine against every anomaly rule: ok, or FLAGGED with what was measured."""
    rules = cost.anomaly_rules
    rows = []
    for e in cost.engines:
        found = {f.rule: f.detail for f in e.flags or []}
        first = (e.remeasured.first_flags if e.remeasured else None) or []
        rows.append({"engine": e.engine, **{text: f"FLAGGED: {found[r]}" if r in found else "ok"
                                            for r, text in rules.items()},
                     "measured again": (f"yes ({e.remeasured.what or 'the whole engine'}), first flagged: "
                                        + ", ".join(f.rule for f in first)) if first else
                     (f"no: {e.second_look}" if e.second_look else "no")})
    return pd.DataFrame(rows).set_index("engine") if rows else pd.DataFrame()


def methodology_table(bench: BenchmarkResult, validated: ValidateResult, cost: CostReport) -> pd.DataFrame:
    """How every number was made, in plain words: one row per rule."""
    lg, h, a = bench.loadgen, bench.harness, cost.assumptions
    gate = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in validated.gate.items())
    rows = [
        ("Capacity priced", bench.capacity_method),
        ("Load generator", f"MLPerf LoadGen, Server scenario, P99 bound {lg.sla_p99_ms:g} ms, runs of at least "
                           f"{lg.min_duration_s:g} s and {lg.min_queries:,} queries, {lg.samples:,} samples; "
                           "logs under benchmark/loadgen/"),
        ("Peak search", f"double or halve, then bisect until the highest VALID and lowest INVALID rates are within "
                        f"{lg.peak_tolerance:.0%}, at most {lg.peak_search_runs} runs per search, "
                        f"{lg.peak_repeats} independent searches per engine; these short runs are "
                        "exploratory and never priced"),
        ("Pricing floor", pricing_words(bench.pricing)),
        ("Dynamic batcher", batcher_words(bench)),
        ("Anomaly checks", "before pricing, each engine is checked against the rules of the anomaly table; a flagged "
                           "engine is measured once more, and if still flagged priced with the flag in bold"),
        ("Timing harness", f"{h.warmup} warm-up iterations, then at least {h.min_repeats} iterations and "
                           f"{h.min_time_s:g} s per batch size; INVALID above a spread (CoV) of {h.max_cov:g}; "
                           f"{h.isolation}; {bench.threads} CPU threads; device {bench.device_slug}"),
        ("Memory", h.memory),
        ("Accuracy gate", f"{validated.metric_words} on output "
                          f"`{validated.judged_output}` over {validated.samples:,} samples; {gate}"),
        ("Reference", validated.reference),
        ("Traffic", f"{a.peak_qps:,.0f} QPS at peak (daily requests / 86,400 × peak-to-average), "
                    f"{a.target_utilization:.0%} planned utilization, N+{a.redundancy}"),
        ("Cost", f"USD per 1M = hourly price / (capacity × utilization × 3,600) × 10⁶; instances = ⌈peak QPS / "
                 f"(capacity × utilization)⌉ + redundancy; annual = instances × hourly price × {a.hours_per_year:,} h"),
        ("Range", a.range),
    ]
    # a Styler: a DataFrame's display would cut these sentences at 50 characters
    return (pd.DataFrame(rows, columns=["what", "how"]).style.hide(axis="index")
            .set_properties(**{"text-align": "left", "white-space": "normal"}))


def plot_cost(cost: CostReport):
    """Cost per 1M inferences and instances needed, per priced engine."""
    import matplotlib.pyplot as plt

    a = cost.assumptions
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = [e.engine for e in cost.engines]
    colors = ["#888888" if e.baseline else "#2a7ab9" for e in cost.engines]
    ax1.barh(names, [e.usd_per_1m for e in cost.engines], color=colors)
    ax1.set_xlabel("USD per 1M inferences")
    ax1.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    ax1.set_title(f"Unit cost at {a.target_utilization:.0%} utilization")
    ax2.barh(names, [e.instances for e in cost.engines], color=colors)
    ax2.set_xlabel("instances")
    ax2.set_title(f"Instances for {a.peak_qps:,.0f} QPS peak (N+{a.redundancy})")
    for ax in (ax1, ax2):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def scenarios_table(cost: CostReport) -> pd.DataFrame:
    """Instances and annual cost per engine for each growth scenario and for the price scenario."""
    rows = []
    for e in cost.engines:
        row = {"engine": e.engine}
        for sc in e.scenarios:
            row[f"{sc.growth:g}x: instances"] = f"{int(sc.instances):,d}"
            row[f"{sc.growth:g}x: annual USD"] = f"{sc.annual_usd:,.0f}"
        ps = e.price_scenario
        row[f"price {ps.price_change:+.0%}: annual USD"] = f"{ps.annual_usd:,.0f}"
        if e.cost_share_of_revenue is not None:
            row["cost / revenue"] = f"{e.cost_share_of_revenue:.2%}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("engine") if rows else pd.DataFrame()


def plot_scenarios(cost: CostReport):
    """Accelerators needed per engine as traffic grows."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 3.6))
    growth = cost.assumptions.growth
    width = 0.8 / max(1, len(cost.engines))
    for i, e in enumerate(cost.engines):
        ax.bar(np.arange(len(growth)) + i * width, [s.instances for s in e.scenarios], width, label=e.engine)
    ax.set_xticks(np.arange(len(growth)) + width * (len(cost.engines) - 1) / 2, [f"{g:g}x traffic" for g in growth])
    ax.set_ylabel("instances")
    ax.set_title(f"Accelerators needed by scenario (N+{cost.assumptions.redundancy})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def claims_appendix(cost: CostReport, run_dir: Path):
    """Each claim with its source file, that file's sha256 now, and the command that re-creates it.

    A Styler, not a DataFrame: a DataFrame's display cuts long texts, and `verify` looks for each
    claim's full text in report.html."""
    from ..provenance import sha256_file

    hashes: dict[str, str] = {}
    rows = []
    for c in cost.claims:
        if c.source not in hashes:
            f = Path(run_dir) / c.source
            hashes[c.source] = sha256_file(f) if f.exists() else "written by this notebook (see manifest.json)"
        rows.append({"claim": c.text, "value": c.value, "source": c.source, "key": c.key,
                     "sha256": hashes[c.source], "re-create": f"scaleproof reproduce {published_path(run_dir)}"})
    return pd.DataFrame(rows).style.format(escape="html").hide(axis="index")
