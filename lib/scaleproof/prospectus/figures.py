"""The prospectus notebook's tables and charts: the headline before/after per model, the chart of capacity per
accelerator, accelerator memory and cost per request, the year table, the scenario bands and the trace of
every figure to its run file, price row and rate. The rate and its date go under every money table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .money import fmt, fmt_per_request, sig

SIDES = ("before", "after")


def rate_line(result: dict[str, Any]) -> str:
    return f"*Amounts in {result['currency']}. {result['rate_words']}*"


def flag_words(engine: dict[str, Any]) -> str:
    """The benchmark's anomaly flags of an engine, the accepted ones marked: shown beside its figure."""
    if not engine.get("flags"):
        return ""
    accepted = set(engine.get("accepted_flags") or ())
    return "; ".join(f"⚠ {f['rule']}" + (" (accepted in the params)" if f["rule"] in accepted else "")
                     + f": {f['detail']}" for f in engine["flags"])


def instance_counts(counts: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{kind}: {n['before']} → {n['after']}" for kind, n in counts.items())


def headline_markdown(result: dict[str, Any]) -> str:
    cur, pol = result["currency"], result["policy"]
    h = result["headline"]
    lines = [f"## {result['title']}", "",
             f"- **Inference OPEX, fiscal {h['fiscal_year']} (base case, {pol} fleet):** {fmt(h['opex_before'], cur)} → "
             f"**{fmt(h['opex_after'], cur)}** a year, saving **{fmt(h['savings'], cur)}** "
             f"({fmt(h['savings_over_years'], cur)} over the {len({y['fiscal_year'] for y in result['years']})} "
             f"years); gross margin **{h['margin_contribution_pp']:+.2f} pp** from the optimization.",
             "- The headline cost is the **fleet cost per 1M**: what the fleet costs over the day divided by what it "
             "serves. The unit cost at the target utilization is shown as its **floor**.", ""]
    for m in result["models"]:
        t = m["today"]
        b, a = t["fleets"][pol]["before"], t["fleets"][pol]["after"]
        lines.append(f"- **{m['name']}** on {m['run']['device']}: {m['run']['before']['instance_qps']:,.0f} → "
                     f"{m['run']['after']['instance_qps']:,.0f} inferences/s per instance "
                     f"({t['capacity_multiple']:.2f}×), {fmt_per_request(b['fleet_per_request'], cur)} → "
                     f"**{fmt_per_request(a['fleet_per_request'], cur)} per request**; the same budget serves "
                     f"{t['traffic_multiple_same_budget']:.2f}× the traffic, or saves "
                     f"{fmt(t['annual_savings'], cur)} a year.")
        for side in SIDES:
            if flag_words(m["run"][side]):
                lines.append(f"  - {side} ({m['run'][side]['engine']}), as the benchmark flagged it: "
                             f"{flag_words(m['run'][side])}")
    return "\n".join(lines + ["", rate_line(result)])


def models_table(result: dict[str, Any]) -> pd.DataFrame:
    cur = result["currency"]
    rows = []
    for m in result["models"]:
        for pol, sides in m["today"]["fleets"].items():
            for side in SIDES:
                f, e = sides[side], m["run"][side]
                rows.append({"model": m["name"], "policy": pol, "": side, "engine": e["engine"],
                             "per accelerator (inf/s)": f"{e['qps']:,.0f}",
                             "memory (GB)": f"{e['memory_gb']:.2f}" if e["memory_gb"] else "—",
                             "peak instances": f["peak_instances"], "instance-hours/day": f["instance_hours_per_day"],
                             f"per year ({cur})": fmt(f["cost_per_year"], cur),
                             "fleet per 1M (headline)": fmt(f["fleet_per_1m"], cur, 2 if f["fleet_per_1m"] >= 1 else 0),
                             "floor per 1M": fmt(f["floor_per_1m"], cur, 2 if f["floor_per_1m"] >= 1 else 0),
                             "per request": fmt_per_request(f["fleet_per_request"], cur),
                             "mean utilization": f"{f['mean_utilization']:.0%}",
                             "benchmark flags": flag_words(e) or "—"})
    return pd.DataFrame(rows)


def year_table(result: dict[str, Any], case: str = "base") -> pd.DataFrame:
    cur = result["currency"]
    rows = [{"fiscal year": y["fiscal_year"], "traffic ×": f"{y['traffic_multiple']:.2f}",
             "instances before → after": instance_counts(y["instances"]),
             "OPEX before": fmt(y["opex_before"], cur), "OPEX after": fmt(y["opex_after"], cur),
             "saving": fmt(y["savings"], cur), "revenue": fmt(y["revenue"], cur),
             "OPEX / revenue": f"{y['opex_share_before']:.2%} → {y['opex_share_after']:.2%}",
             "gross margin": f"{y['gross_margin_before']:.2%} → {y['gross_margin_after']:.2%}",
             "optimization (pp)": f"{y['margin_contribution_pp']:+.2f}"}
            for y in result["years"] if y["case"] == case]
    return pd.DataFrame(rows)


def trace_table(result: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for m in result["models"]:
        for side in SIDES:
            rows.append({"model": m["name"], "figure": f"capacity {side} ({m['run'][side]['engine']})",
                         "from": m["trace"][f"capacity_{side}"]})
            rows.append({"model": m["name"], "figure": f"high-case capacity {side}", "from": m["trace"][f"high_{side}"]})
        rows.append({"model": m["name"], "figure": "price of an instance-hour", "from": m["trace"]["price"]})
        rows.append({"model": m["name"], "figure": "currency", "from": m["trace"]["rate"]})
    return pd.DataFrame(rows)


def before_after_figure(result: dict[str, Any]):
    """One row per model, three panels each: capacity per accelerator, the memory the benchmark measured
    (accelerator memory on a GPU), and the fleet cost per request; before and after, on linear scales."""
    import matplotlib.pyplot as plt

    cur, pol = result["currency"], result["policy"]
    models = result["models"]
    fig, axes = plt.subplots(len(models), 3, figsize=(12, 2.6 * len(models)), squeeze=False)
    panels = (("capacity per accelerator (inferences/s)", lambda m, s: m["run"][s]["qps"], lambda v: f"{v:,.0f}"),
              ("memory measured (GB)", lambda m, s: m["run"][s]["memory_gb"] or 0.0, lambda v: f"{v:.2f}"),
              (f"fleet cost per request ({cur})", lambda m, s: m["today"]["fleets"][pol][s]["fleet_per_request"],
               lambda v: sig(v)))
    for row, m in zip(axes, models, strict=True):
        for ax, (title, value, label) in zip(row, panels, strict=True):
            vals = [value(m, s) for s in SIDES]
            bars = ax.bar([f"before\n{m['run']['before']['engine']}", f"after\n{m['run']['after']['engine']}"], vals,
                          color=("#9aa5b1", "#1f6feb"), width=0.6)
            ax.bar_label(bars, labels=[label(v) for v in vals], fontsize=8)
            ax.set_ylim(0, max(vals) * 1.2 or 1)
            ax.set_title(f"{m['name']}: {title}", fontsize=8.5)
            ax.tick_params(labelsize=7.5)
    fig.text(0.5, 0.0, f"{pol} fleet. {result['rate_words']}", ha="center", va="top", fontsize=7, wrap=True)
    fig.tight_layout()
    return fig


def bands_figure(result: dict[str, Any]):
    """Inference OPEX per year, before and after, the base case as a line and low–high as a band; and the
    optimization's contribution to gross margin in pp."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    cur = result["currency"]
    by = {c: [y for y in result["years"] if y["case"] == c] for c in ("low", "base", "high")}
    years = [y["fiscal_year"] for y in by["base"]]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    for side, color in (("before", "#9aa5b1"), ("after", "#1f6feb")):
        key = f"opex_{side}"
        lo = [min(by[c][i][key] for c in by) for i in range(len(years))]
        hi = [max(by[c][i][key] for c in by) for i in range(len(years))]
        ax.fill_between(years, lo, hi, color=color, alpha=0.25, label=f"{side}: low–high cases")
        ax.plot(years, [y[key] for y in by["base"]], color=color, marker="o", label=f"{side}: base case")
    ax.set_title(f"Inference OPEX per year ({cur}, millions)", fontsize=10)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:,.1f}"))
    ax.set_xticks(years)
    ax.legend(fontsize=8)
    for c, style in (("low", ":"), ("base", "-"), ("high", "--")):
        ax2.plot(years, [y["margin_contribution_pp"] for y in by[c]], style, marker="o", label=c, color="#1f6feb")
    ax2.set_title("The optimization's contribution to gross margin (pp)", fontsize=10)
    ax2.set_xticks(years)
    ax2.legend(fontsize=8)
    fig.text(0.5, 0.0, result["rate_words"], ha="center", va="top", fontsize=7, wrap=True)
    fig.tight_layout()
    return fig
