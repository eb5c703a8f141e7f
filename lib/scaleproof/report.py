"""What the report shows: the summary, tables and plots of a run, and the HTML rendering.

The cost-report notebook calls these; the runner renders the executed notebook to report.html
without code. Everything here reads the stages' JSON results, never notebook outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def fmt_money(x: float) -> str:
    # "USD" rather than "$": Jupyter's Markdown renderer reads $...$ as LaTeX
    return f"{x:,.0f} USD" if abs(x) >= 100 else f"{x:,.4g} USD"


def int8_markdown(calibrated: dict[str, Any]) -> str:
    """What the INT8 model is: how many nodes stayed FP32, at what accuracy, and what that cost in speed."""
    if not calibrated.get("int8_onnx"):
        return ""
    text = (f"- **INT8 model:** {calibrated['statement']} ({calibrated['quantizer']} {calibrated['quantizer_version']}, "
            f"{calibrated['calib_method']} calibration on {calibrated['calib_samples']} samples")
    speed = calibrated.get("speed_cpu", {})
    fp32, int8 = speed.get("fp32", {}), speed.get("int8", {})
    if fp32.get("samples_per_s") and int8.get("samples_per_s"):
        text += (f"; on this CPU at batch {int8['batch']}: {int8['samples_per_s']:,.0f} samples/s in INT8 against "
                 f"{fp32['samples_per_s']:,.0f} in FP32 (ONNX Runtime)")
    return text + "). *Source: calibrate/calibrate.json*"


def summary_markdown(cost: dict[str, Any], validated: dict[str, Any], exported: dict[str, Any],
                     calibrated: dict[str, Any] | None = None) -> str:
    """The key claims, up front, each with the file it comes from."""
    lines = [f"## Key results: `{exported['model']}` measured on {measured_on(bench_hardware(cost))}", ""]
    if cost.get("exploratory"):
        lines += [f"> **EXPLORATORY RUN, NOT PRICED.** {cost['status'].removeprefix('exploratory, not priced: ')}. The figures below "
                  "show how the chain works; do not use them as a price.", ""]
    base = next((e for e in cost["engines"] if e["baseline"]), None)
    best = next((e for e in cost["engines"] if e["engine"] == cost["best"]), None)
    if base and best and best is not base:
        lines += [
            f"- **Capacity per instance (confirmed Server QPS at P99 ≤ {cost['assumptions']['sla_p99_ms']:g} ms):** "
            f"{base['qps']:,.0f} → **{best['qps']:,.0f} queries/s** "
            f"({best['speedup_vs_baseline']:.2f}×{ratio_range(base, best)}), `{base['engine']}` → `{best['engine']}` "
            f"(P99 {base['p99_ms']:.3f} → {best['p99_ms']:.3f} ms). *Source: benchmark/benchmark.json*",
            f"- **Unit cost:** {fmt_money(base['usd_per_1m'])} → **{fmt_money(best['usd_per_1m'])} per 1M inferences** "
            f"at {cost['assumptions']['target_utilization']:.0%} utilization; the same budget serves "
            f"**{best['traffic_multiple_same_budget']:.2f}×** the traffic. *Source: cost_report/cost_report.json*",
            f"- **Fleet for {cost['assumptions']['peak_qps']:,.0f} QPS peak (N+{cost['assumptions']['redundancy']}):** "
            f"{base['instances']} → **{best['instances']}** instances, annual cost {fmt_money(base['annual_usd'])} → "
            f"{fmt_money(best['annual_usd'])} (saves {fmt_money(best['annual_savings_usd'])}/year"
            + (f"; low–high case {fmt_money(best['annual_savings_range'][0])}–"
               f"{fmt_money(best['annual_savings_range'][1])} from both capacities' ranges"
               if best.get("annual_savings_range") else "")
            + "). *Source: cost_report/cost_report.json*",
        ]
    elif base:
        lines.append(f"- Only the baseline `{base['engine']}` could be priced: {base['qps']:,.0f} inferences/s, "
                     f"{fmt_money(base['usd_per_1m'])} per 1M.")
    else:
        lines.append("- **No engine could be priced**: see the excluded engines below.")
    gate = ", ".join(f"{k} {v}" for k, v in validated["gate"].items())
    if validated.get("reference_degenerate"):
        lines.append(f"- **The FP32 reference is degenerate ({validated['reference_degenerate']}):** no accuracy result "
                     "can be claimed for any engine. *Source: validate/validate.json*")
    for e in cost["engines"]:
        if not e["baseline"]:
            lines.append(f"- **Accuracy ({validated.get('metric_words', validated['metric'])}):** `{e['engine']}` "
                         f"{e['accuracy']} (gate: {gate}). *Source: validate/validate.json*")
    if calibrated and calibrated.get("int8_onnx"):
        lines.append(int8_markdown(calibrated))
    if calibrated and calibrated.get("adjusted"):
        lines.append(f"- **Adjusted parameters:**{adjusted_words(calibrated)} *Source: calibrate/calibrate.json*")
    sc = cost["assumptions"].get("scaling", {})
    if sc.get("accelerators_per_instance", 1) > 1:
        rng = sc.get("factor_range")
        lines.append(f"- **{sc['accelerators_per_instance']} accelerators per instance**, scaling factor "
                     f"{sc['factor']:.3f}" + (f" (range {rng[0]:.3f}–{rng[1]:.3f})" if rng else "")
                     + f" — {sc['source']}." + ("" if sc.get("measured") else
                     " **Scaling beyond what was measured is an assumption here, not a measurement.**"))
    for e in cost["engines"]:
        again = " (still flagged after it was measured a second time)" if e.get("remeasured") else ""
        for f in e.get("flags", []):
            lines.append(f"- **⚠ `{e['engine']}` is priced with a flag{again}: {cost['anomaly_rules'][f['rule']]} "
                         f"({f['detail']}).** *Source: benchmark/benchmark.json*")
    if cost["excluded"]:
        lines.append(f"- **Excluded from the claims:** {', '.join(x['engine'] for x in cost['excluded'])} (reasons below).")
    p = cost["price"]
    lines += ["", f"Priced as **{p['offer']}** ({p['accelerator']}), {p['usd_per_hour']} USD/h (source: {p['source']}, "
              f"as of {p['as_of']}, confidence {p['confidence']}; row `{p['id']}` of {p.get('table', 'the price table')}). Accuracy metric: {validated.get('metric_words', validated['metric'])}, "
              f"on output `{validated.get('judged_output', '')}` over {validated['samples']} validation samples."]
    return "\n".join(lines)


def engines_table(cost: dict[str, Any]) -> pd.DataFrame:
    rows = [{
        "engine": e["engine"], "confirmed Server QPS": f"{e['qps']:,.0f}",
        "P99 ms": f"{e['p99_ms']:.3f}", "peak memory MB (GPU allocated, else RSS)": f"{e['memory_mb']:,.0f}",
        "accuracy vs FP32": e["accuracy"],
        "USD per 1M": f"{e['usd_per_1m']:.4g}", "instances": f"{int(e['instances']):,d}",
        "annual USD": f"{e['annual_usd']:,.0f}", "speed-up": f"{e.get('speedup_vs_baseline', 1.0):.2f}×",
        "flags": ", ".join(f["rule"] for f in e.get("flags", [])) or "none",
    } for e in cost["engines"]]
    return pd.DataFrame(rows).set_index("engine") if rows else pd.DataFrame()


def ratio_range(base: dict[str, Any], best: dict[str, Any]) -> str:
    """The headline ratio as a range where the cost model has one (both capacities' ranges, low and high case)."""
    r = best.get("speedup_range")
    return f"; range {r[0]:.2f}–{r[1]:.2f}×" if r else ""


def anomalies_table(cost: dict[str, Any]) -> pd.DataFrame:
    """Every priced engine against every anomaly rule: ok, or FLAGGED with what was measured."""
    rules = cost.get("anomaly_rules", {})
    rows = []
    for e in cost["engines"]:
        found = {f["rule"]: f["detail"] for f in e.get("flags", [])}
        first = (e.get("remeasured") or {}).get("first_flags") or []
        rows.append({"engine": e["engine"], **{text: f"FLAGGED: {found[r]}" if r in found else "ok"
                                               for r, text in rules.items()},
                     "measured again": ("yes, first flagged: " + ", ".join(f["rule"] for f in first)) if first else "no"})
    return pd.DataFrame(rows).set_index("engine") if rows else pd.DataFrame()


def bench_hardware(cost: dict[str, Any]) -> dict[str, Any]:
    return cost.get("measured_hardware") or {}


def measured_on(hw: dict[str, Any]) -> str:
    """The measured machine in words: its GPU, else its CPU (the price row only says what it is priced as)."""
    if hw.get("gpu"):
        return f"**{hw['gpu']['name']}** (compute capability {hw['gpu']['compute_capability']})"
    cpu = hw.get("cpu") or {}
    return f"**{cpu.get('model', 'this CPU')}**, {cpu.get('usable_cores', '?')} cores" if cpu else "this machine"


def run_header(run_dir: Path) -> str:
    """Run id, date, git commit and key package versions: the first thing an auditor reads."""
    import datetime as dt

    from .provenance import git_state, package_versions

    git = git_state() or {}
    versions = package_versions()
    keys = ("torch", "onnxruntime", "tensorrt", "mlcommons-loadgen", "transformers")
    pkgs = ", ".join(f"{k} {versions[k]}" for k in keys if k in versions)
    commit = f"`{git['commit'][:12]}`" + (" (uncommitted changes)" if git.get("dirty") else "") if git.get("commit") \
        else "not a git checkout"
    return (f"**Run** `{Path(run_dir).name}` · **date** {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · "
            f"**scaleproof commit** {commit} · **packages** {pkgs}")


def methodology_table(bench: dict[str, Any], validated: dict[str, Any], cost: dict[str, Any]) -> pd.DataFrame:
    """How every number was made, in plain words: one row per rule."""
    lg, h, a = bench["loadgen"], bench["harness"], cost["assumptions"]
    gate = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in validated["gate"].items())
    rows = [
        ("Capacity priced", bench["capacity_method"]),
        ("Load generator", f"MLPerf LoadGen, Server scenario, P99 bound {lg['sla_p99_ms']:g} ms, runs of at least "
                           f"{lg['min_duration_s']:g} s and {lg['min_queries']:,} queries, {lg['samples']:,} samples; "
                           "logs under benchmark/loadgen/"),
        ("Peak search", f"double or halve, then bisect until the highest VALID and lowest INVALID rates are within "
                        f"{lg['peak_tolerance']:.0%}, at most {lg['peak_search_runs']} runs per search, "
                        f"{lg.get('peak_repeats', 1)} independent searches per engine; these short runs are "
                        "exploratory and never priced"),
        ("Pricing floor", pricing_words(bench.get("pricing") or {})),
        ("Dynamic batcher", batcher_words(bench)),
        ("Anomaly checks", "before pricing, each engine is checked against the rules of the anomaly table; a flagged "
                           "engine is measured once more, and if still flagged priced with the flag in bold"),
        ("Timing harness", f"{h['warmup']} warm-up iterations, then at least {h['min_repeats']} iterations and "
                           f"{h['min_time_s']:g} s per batch size; INVALID above a spread (CoV) of {h['max_cov']:g}; "
                           f"{h['isolation']}; {bench['threads']} CPU threads; device {bench['device_slug']}"),
        ("Memory", h["memory"]),
        ("Accuracy gate", f"{validated.get('metric_words', validated['metric'])} on output "
                          f"`{validated.get('judged_output', '')}` over {validated['samples']:,} samples; {gate}"),
        ("Reference", validated["reference"]),
        ("Traffic", f"{a['peak_qps']:,.0f} QPS at peak (daily requests / 86,400 × peak-to-average), "
                    f"{a['target_utilization']:.0%} planned utilization, N+{a['redundancy']}"),
        ("Cost", f"USD per 1M = hourly price / (capacity × utilization × 3,600) × 10⁶; instances = ⌈peak QPS / "
                 f"(capacity × utilization)⌉ + redundancy; annual = instances × hourly price × {a['hours_per_year']:,} h"),
        ("Range", a["range"]),
    ]
    # a Styler: a DataFrame's display would cut these sentences at 50 characters
    return (pd.DataFrame(rows, columns=["what", "how"]).style.hide(axis="index")
            .set_properties(**{"text-align": "left", "white-space": "normal"}))


def pricing_words(pricing: dict[str, Any]) -> str:
    if not pricing:
        return "not recorded (a result from before confirmation runs)"
    words = (f"a priced capacity comes from a VALID confirmation run of at least {pricing['floor_s']:g} s "
             f"(default floor {pricing['default_floor_s']:g} s on this device)")
    return words + (f"; **{pricing['exploratory']}**" if pricing.get("exploratory") else "")


def batcher_words(bench: dict[str, Any]) -> str:
    lg = bench["loadgen"]
    swept = lg.get("sweep_max_batch") or lg.get("sweep_queue_delay_ms")
    chosen = "; ".join(f"{e['engine']}: max batch {e['server']['batcher']['max_batch']}, "
                       f"{e['server']['batcher']['max_queue_delay_ms']:g} ms"
                       for e in bench["engines"] if e["server"].get("batcher"))
    head = (f"swept max batch {lg.get('sweep_max_batch') or [lg['batcher_max_batch']]} × queue delay "
            f"{lg.get('sweep_queue_delay_ms') or [lg['max_queue_delay_ms']]} ms per engine, keeping the configuration "
            "with the highest Server peak" if swept else
            f"batches of at most {lg['batcher_max_batch']}, a request waits at most {lg['max_queue_delay_ms']:g} ms")
    return f"{head}; chosen: {chosen or 'n/a'}; static comparison: fixed batch {lg['static_batch']}"


def batcher_sweep_table(bench: dict[str, Any]) -> pd.DataFrame:
    """Every swept batcher configuration per engine: its search's peak, and which one was chosen."""
    rows = []
    for e in bench["engines"]:
        chosen = e["server"].get("batcher") or {}
        for c in e["server"].get("sweep") or []:
            peak = c["search"]["peak_qps"]
            rows.append({"engine": e["engine"], "max batch": c["max_batch"],
                         "queue delay ms": f"{c['max_queue_delay_ms']:g}",
                         "search peak QPS": f"{peak:,.0f}" if peak is not None else "no VALID run",
                         "chosen": "chosen" if (c["max_batch"], c["max_queue_delay_ms"]) ==
                         (chosen.get("max_batch"), chosen.get("max_queue_delay_ms")) else ""})
    return pd.DataFrame(rows).set_index(["engine", "max batch", "queue delay ms"]) if rows else pd.DataFrame()


def plot_batcher_sweep(bench: dict[str, Any]):
    """P99 against achieved QPS of every search run of every swept configuration, one panel per engine."""
    import matplotlib.pyplot as plt

    engines = [e for e in bench["engines"] if e["server"].get("sweep")]
    if not engines:
        return None
    fig, axes = plt.subplots(1, len(engines), figsize=(5 * len(engines), 4), squeeze=False)
    for ax, e in zip(axes[0], engines, strict=True):
        for i, c in enumerate(e["server"]["sweep"]):
            runs = sorted((r for r in c["search"]["runs"] if r["qps"] == r["qps"]), key=lambda r: r["qps"])
            ax.plot([r["qps"] for r in runs], [r["p99_ms"] for r in runs], marker="o", color=f"C{i}", alpha=0.8,
                    label=f"batch ≤{c['max_batch']}, {c['max_queue_delay_ms']:g} ms")
        ax.axhline(bench["loadgen"]["sla_p99_ms"], color="red", ls="--", lw=1, label="P99 bound")
        ax.set(xscale="log", yscale="log", xlabel="achieved QPS", ylabel="P99 latency, ms", title=e["engine"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def loadgen_table(bench: dict[str, Any]) -> pd.DataFrame:
    """Per engine: LoadGen's three scenarios, and what dynamic batching buys over static."""
    def peak(search: dict[str, Any]) -> str | float:
        if search["peak_qps"] is not None:
            return round(search["peak_qps"])
        return "INVALID" if search["runs"] else "not searched"

    rows = []
    for e in bench["engines"]:
        ss, off, srv = e["single_stream"], e["offline"], e["server"]
        dyn, sta = srv["dynamic"]["peak_qps"], srv["static"]["peak_qps"]
        rows.append({
            "engine": e["engine"],
            "SingleStream P90 ms": round(ss["p90_ms"], 3) if ss["valid"] else "INVALID",
            "SingleStream P99 ms": round(ss["p99_ms"], 3) if ss["valid"] else "INVALID",
            "Offline samples/s": round(off["qps"]) if off["valid"] else "INVALID",
            "Server peak QPS, dynamic": peak(srv["dynamic"]),
            "Server peak QPS, static": peak(srv["static"]),
            "dynamic / static": round(dyn / sta, 2) if dyn and sta else "n/a",
            "priced capacity QPS": f"{e['capacity']['qps']:,.0f}" if e.get("capacity") else
            (e.get("capacity_reason") or "none")[:80],
        })
    return pd.DataFrame(rows).set_index("engine")


def plot_server(bench: dict[str, Any]):
    """QPS vs P99 of every Server run of the peak searches, and the batch sizes run at each peak."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, e in enumerate(bench["engines"]):
        color = f"C{i}"
        for mode, marker in (("dynamic", "o"), ("static", "s")):
            runs = sorted(e["server"][mode]["runs"], key=lambda r: r["target_qps"])
            ax1.plot([r["target_qps"] for r in runs], [r["p99_ms"] for r in runs], ls="-" if mode == "dynamic" else ":",
                     color=color, alpha=0.6, label=f"{e['engine']} {mode}")
            for r in runs:
                ax1.scatter(r["target_qps"], r["p99_ms"], marker=marker, color=color,
                            facecolors=color if r["valid"] else "none", zorder=3)
        peak_run = e["server"]["dynamic"]["peak_run"]
        if peak_run:
            sizes = {int(k): v for k, v in peak_run["batch_sizes"].items()}
            total = sum(sizes.values())
            ax2.plot(sorted(sizes), [sizes[b] / total for b in sorted(sizes)], marker="o", color=color,
                     label=f"{e['engine']} @ {peak_run['target_qps']:,.0f} QPS")
    ax1.axhline(bench["loadgen"]["sla_p99_ms"], color="red", ls="--", lw=1, label="P99 bound")
    ax1.set(xscale="log", yscale="log", xlabel="target QPS (Poisson arrivals)", ylabel="P99 latency, ms",
            title="Server runs: filled = VALID, hollow = INVALID")
    ax2.set(xlabel="batch size run", ylabel="share of batches", title="Dynamic batch sizes at the peak")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def rounded(value: float | None, digits: int) -> float | str:
    """A figure for a table; "n/a" where there is none (a CoV needs enough iterations for its block means:
    the results file holds null for it then)."""
    return "n/a" if value is None or value != value else round(value, digits)


def timings_table(bench: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for e in bench["engines"]:
        for t in e["timings"]:
            rows.append({"engine": e["engine"], "batch": t["batch"],
                         "inferences/s": round(t["throughput"]) if t["valid"] else "INVALID",
                         "P50 ms": rounded(t["p50_ms"], 3), "P90 ms": rounded(t["p90_ms"], 3),
                         "P99 ms": rounded(t["p99_ms"], 3), "CoV": rounded(t["cov"], 3), "iterations": t["iterations"],
                         "verdict": t["reason"]})
    return pd.DataFrame(rows)


def validation_table(validated: dict[str, Any]) -> pd.DataFrame:
    cols = ["engine", "metric", "top1", "top1_delta_pts", "top1_agreement", "cosine_mean", "output_err", "max_rel_err",
            "nonfinite_outputs", "passed", "reason"]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in validated["engines"]])


def plot_throughput(bench: dict[str, Any]):
    """Throughput and P99 latency against batch size, per engine (valid timings only)."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for e in bench["engines"]:
        ok = [t for t in e["timings"] if t["valid"]]
        ax1.plot([t["batch"] for t in ok], [t["throughput"] for t in ok], marker="o", label=e["engine"])
        ax2.plot([t["batch"] for t in ok], [t["p99_ms"] for t in ok], marker="o", label=e["engine"])
    measured = sorted({t["batch"] for e in bench["engines"] for t in e["timings"]})
    for ax, title, ylabel in ((ax1, "Throughput by batch size", "inferences/s"),
                              (ax2, "P99 latency by batch size", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(measured, [str(b) for b in measured])  # only the batch sizes that were measured
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax2.set_yscale("log")
    ax1.legend()
    fig.tight_layout()
    return fig


def plot_cost(cost: dict[str, Any]):
    """Cost per 1M inferences and instances needed, per priced engine."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = [e["engine"] for e in cost["engines"]]
    colors = ["#888888" if e["baseline"] else "#2a7ab9" for e in cost["engines"]]
    ax1.barh(names, [e["usd_per_1m"] for e in cost["engines"]], color=colors)
    ax1.set_xlabel("USD per 1M inferences")
    ax1.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    ax1.set_title(f"Unit cost at {cost['assumptions']['target_utilization']:.0%} utilization")
    ax2.barh(names, [e["instances"] for e in cost["engines"]], color=colors)
    ax2.set_xlabel("instances")
    ax2.set_title(f"Instances for {cost['assumptions']['peak_qps']:,.0f} QPS peak (N+{cost['assumptions']['redundancy']})")
    for ax in (ax1, ax2):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def scenarios_table(cost: dict[str, Any]) -> pd.DataFrame:
    """Instances and annual cost per engine for each growth scenario and for the price scenario."""
    rows = []
    for e in cost["engines"]:
        row = {"engine": e["engine"]}
        for sc in e["scenarios"]:
            row[f"{sc['growth']:g}x: instances"] = f"{int(sc['instances']):,d}"
            row[f"{sc['growth']:g}x: annual USD"] = f"{sc['annual_usd']:,.0f}"
        ps = e["price_scenario"]
        row[f"price {ps['price_change']:+.0%}: annual USD"] = f"{ps['annual_usd']:,.0f}"
        if "cost_share_of_revenue" in e:
            row["cost / revenue"] = f"{e['cost_share_of_revenue']:.2%}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("engine") if rows else pd.DataFrame()


def plot_scenarios(cost: dict[str, Any]):
    """Accelerators needed per engine as traffic grows."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 3.6))
    growth = cost["assumptions"]["growth"]
    width = 0.8 / max(1, len(cost["engines"]))
    for i, e in enumerate(cost["engines"]):
        ax.bar(np.arange(len(growth)) + i * width, [s["instances"] for s in e["scenarios"]], width, label=e["engine"])
    ax.set_xticks(np.arange(len(growth)) + width * (len(cost["engines"]) - 1) / 2, [f"{g:g}x traffic" for g in growth])
    ax.set_ylabel("instances")
    ax.set_title(f"Accelerators needed by scenario (N+{cost['assumptions']['redundancy']})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def claims_appendix(cost: dict[str, Any], run_dir: Path):
    """Each claim with its source file, that file's sha256 now, and the command that re-creates it.

    A Styler, not a DataFrame: a DataFrame's display cuts long texts, and `verify` looks for each
    claim's full text in report.html."""
    from .provenance import sha256_file

    hashes: dict[str, str] = {}
    rows = []
    for c in cost["claims"]:
        if c["source"] not in hashes:
            f = Path(run_dir) / c["source"]
            hashes[c["source"]] = sha256_file(f) if f.exists() else "written by this notebook (see manifest.json)"
        rows.append({"claim": c["text"], "value": c["value"], "source": c["source"], "key": c["key"],
                     "sha256": hashes[c["source"]], "re-create": f"scaleproof reproduce {published_path(run_dir)}"})
    return pd.DataFrame(rows).style.format(escape="html").hide(axis="index")


def published_path(run_dir: Path) -> Path:
    """Where the run will be once published: a staging folder `OUT/.staging/ID` becomes `OUT/ID`."""
    run_dir = Path(run_dir).resolve()
    return run_dir.parent.parent / run_dir.name if run_dir.parent.name == ".staging" else run_dir


def render_html(executed_notebook: Path, out: Path) -> Path:
    """The executed report notebook as standalone HTML with no code cells (what auditors read)."""
    import nbformat
    from nbconvert import HTMLExporter

    from .provenance import atomic_write_bytes

    nb = nbformat.read(str(executed_notebook), as_version=4)
    # the "offline" template (lib/scaleproof/templates) drops the lab template's require.js/MathJax from a CDN
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(Path(__file__).parent / "templates")],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_bytes(out, body.encode("utf-8"))


# 02_calibrate ------------------------------------------------------------------------------------

def adjusted_words(result: dict[str, Any]) -> str:
    """Parameters the data could not honour, in bold: never silently changed."""
    return "".join(f" **{a['parameter']} {a['asked']:,} → {a['used']:,} used: {a['why']}.**"
                   for a in result.get("adjusted") or [])


def calibration_markdown(c: dict[str, Any]) -> str:
    """What 02_calibrate made and from what: the INT8 statement, calibration data, quantizer, cache."""
    head = (f"**{c['statement']}** (gate: {c['gate']}, {c['val_samples']} validation samples, "
            f"reference: {c['reference']}).") + adjusted_words(c)
    if not c["int8_onnx"]:
        return head + " The FP16 model is below."
    return head + (
        f"\n\nCalibrated with **{c['calib_method']}** {c['calib_settings']} on {c['calib_samples']} samples "
        f"(data sha256 `{c['calib_data_sha256'][:16]}…`), {c['format']}, per-channel weights: {c['per_channel']}; "
        f"quantizer **{c['quantizer']} {c['quantizer_version']}** (asked: {c['quantizer_requested']}). "
        f"INT8 model `{c['int8_onnx']}`: {c['qdq']['int8_nodes']} nodes in INT8, {c['qdq']['quantize_nodes']} "
        f"QuantizeLinear. Calibration cache: **{c['calib_cache']['status']}** — {c['calib_cache']['reason']}.")


def mixed_precision_markdown(c: dict[str, Any]) -> str:
    mixed = c.get("mixed_precision")
    if not c["int8_onnx"]:
        return "No INT8 model in this run."
    if mixed is None:
        if c.get("int8_passed"):
            return "INT8 with every node of its scope quantized passed the gate: no mixed precision needed."
        return f"**INT8 is outside the gate and mixed precision did not run:** {c['statement']}"
    steps = "\n".join(f"- {s.get('groups_kept_fp32', '')} group(s), {len(s['kept_fp32'])} node(s) kept in FP32 "
                       f"({', '.join(s['kept_fp32'][:6])}{' …' if len(s['kept_fp32']) > 6 else ''}): {s['reason']}"
                       for s in mixed["steps"])
    verdict = (f"kept in FP32: {', '.join(c['kept_fp32'])}" if mixed["passed"] else f"**{mixed['reason']}**")
    return f"Mixed precision, fewest nodes first; {verdict}.\n\n{steps}"


def sensitivity_table(calibrated: dict[str, Any]) -> pd.DataFrame:
    cols = ["rank", "group", "op_types", "judged", "accuracy_cost_pts", "top1_delta_pts", "top1_agreement",
            "cosine_mean", "max_rel_err"]
    src = calibrated.get("sensitivity", [])
    rows = [{k: r.get(k) for k in cols} for r in src]
    kept = set(calibrated.get("kept_fp32", []))
    for r, s in zip(rows, src, strict=True):
        r["kept in FP32"] = bool(kept & set(s.get("nodes", [])))
    return pd.DataFrame(rows).set_index("rank") if rows else pd.DataFrame(columns=cols)


def plot_sensitivity(calibrated: dict[str, Any], top: int = 25):
    """Accuracy cost and output error of quantizing each node (or group) alone, most costly first."""
    import matplotlib.pyplot as plt

    rows = [r for r in calibrated.get("sensitivity", []) if r.get("judged", True)][:top]
    if not rows:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.3 * len(rows) + 1.5), sharey=True)
    names = [f"{r['group']} ({', '.join(r['op_types'])})"[:70] for r in rows][::-1]
    kept = set(calibrated["kept_fp32"])
    colors = ["C3" if kept & set(r["nodes"]) else "C0" for r in rows][::-1]
    ax1.barh(names, [r["accuracy_cost_pts"] for r in rows][::-1], color=colors)
    ax1.set_xlabel("accuracy cost when quantized alone (pt)")
    ax2.barh(names, [r.get("max_rel_err", 0.0) for r in rows][::-1], color=colors)
    ax2.set_xlabel("max relative output error vs FP32")
    fig.suptitle(f"INT8 sensitivity per node or group ({calibrated['calib_method']}; red: kept in FP32)")
    fig.tight_layout()
    return fig


def methods_table(calibrated: dict[str, Any]) -> pd.DataFrame:
    """Calibration methods compared: accuracy against FP32 and INT8 speed on this CPU."""
    if not calibrated.get("methods"):
        return pd.DataFrame({"note": ["no methods compared (calib_compare is empty or int8 is not in precisions)"]})
    fp32 = calibrated["speed_cpu"]["fp32"]
    rows = [{"method": "FP32 (reference)", "top-1 Δ pt": 0.0 if "top1_delta_pts" in calibrated["int8"] else None,
             "top-1 agreement": 1.0, "max rel err": 0.0, "gate": "—",
             f"samples/s (batch {fp32['batch']})": fp32["samples_per_s"], "cache": "—"}]
    for m in calibrated["methods"]:
        label = m["method"] + (f" ({m['percentile']})" if "percentile" in m else "")
        rows.append({"method": label, "top-1 Δ pt": m.get("top1_delta_pts"), "top-1 agreement": m.get("top1_agreement"),
                     "max rel err": round(m.get("max_rel_err", float("nan")), 5), "gate": "pass" if m["passed"] else m["reason"],
                     f"samples/s (batch {fp32['batch']})": m["int8_cpu"]["samples_per_s"]
                     if m["int8_cpu"]["valid"] else f"INVALID: {m['int8_cpu']['timing_reason']}",
                     "cache": m["cache"]})
    return pd.DataFrame(rows).set_index("method")


def tensorrt_table(built: dict[str, Any]) -> pd.DataFrame:
    """Per TensorRT engine: typing, ONNX nodes vs engine layers, fused and reformat layers, timing cache."""
    rows = []
    for e in built["engines"]:
        t = e.get("tensorrt")
        if not t:
            continue
        layers = t.get("layers", {})
        rows.append({"engine": e["name"], "typing": t.get("typing"), "ONNX nodes": layers.get("onnx_nodes"),
                     "engine layers": layers.get("engine_layers"), "fused layers": layers.get("fused_layers"),
                     "network layers in fused": layers.get("network_layers_in_fused"),
                     "reformat layers": layers.get("reformat_layers"),
                     "timing cache": t.get("timing_cache", {}).get("loaded")})
    if not rows:
        return pd.DataFrame({"note": ["no TensorRT engine in this run (TensorRT is not installed on this machine "
                                      "or backend is not tensorrt/auto)"]})
    return pd.DataFrame(rows).set_index("engine")


def scaling_markdown(bench: dict[str, Any]) -> str:
    """The per-device scaling measurement of 05_benchmark, or why there is none."""
    sc = bench.get("scaling")
    if not sc:
        return "No per-device scaling measured (scaling_devices is 0): a multi-accelerator instance is priced " \
               "assuming linear scaling, and the report says so."
    if "skipped" in sc:
        return f"Per-device scaling skipped: {sc['skipped']}."
    n = len(sc["devices"])
    one, all_ = sc["peak_qps"]["1"], sc["peak_qps"][str(n)]
    factor = "not measured (a search found no VALID rate)" if sc["scaling_factor"] is None else \
        f"**{sc['scaling_factor']:.3f}**"
    rng = sc.get("factor_range")
    spread = f", range {rng[0]:.3f}–{rng[1]:.3f} over the repeated searches" if rng else ""
    return (f"Scaling of `{sc['engine']}` on {sc['device_kind']}: Server capacity {one or 0:,.0f} QPS on 1 device, "
            f"{all_ or 0:,.0f} QPS on {n} ({', '.join(sc['devices'])}); scaling factor {factor}{spread}. "
            f"Method: {sc.get('method', 'peak(N) / (N × peak(1))')}.")
