"""The fleet comparison: the same engines and precisions across GPU types, from the member runs' JSON.

Every row names the member run and the sha256 of its manifest, so a figure in the fleet report
traces back to the run that measured it (and `scaleproof verify` re-checks that run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .provenance import read_json, sha256_file


def summarize(fleet_dir: str | Path) -> dict[str, Any]:
    """Rows per (GPU type, engine) from each succeeded member, and the cheapest type for the load."""
    fleet_dir = Path(fleet_dir)
    fleet = read_json(fleet_dir / "fleet.json")
    rows, members = [], []
    for m in fleet["members"]:
        members.append({k: m.get(k) for k in ("gpu_type", "status", "run", "hostname", "device_slug", "seconds",
                                              "error")})
        if m["status"] != "succeeded":
            continue
        run = fleet_dir / m["run"]
        cost = read_json(run / "cost_report" / "cost_report.json")
        bench = {e["engine"]: e for e in read_json(run / "benchmark" / "benchmark.json")["engines"]}
        manifest_sha = sha256_file(run / "manifest.json")
        for e in cost["engines"]:
            b = bench.get(e["engine"], {})
            rows.append({
                "gpu_type": m["gpu_type"], "device": m.get("device_slug"), "engine": e["engine"],
                "backend": e["backend"], "precision": e["precision"], "baseline": e["baseline"],
                "server_peak_qps": e["qps"], "p99_ms": e["p99_ms"], "memory_mb": e.get("memory_mb"),
                "usd_per_hour": cost["price"]["usd_per_hour"], "offer": cost["price"]["offer"],
                "usd_per_1m": e["usd_per_1m"], "instances": e["instances"], "annual_usd": e["annual_usd"],
                "peak_qps_target": cost["assumptions"]["peak_qps"], "sla_p99_ms": cost["assumptions"]["sla_p99_ms"],
                "gpu_peak_allocated_mb": (b.get("memory") or {}).get("gpu_peak_allocated_mb"),
                "source": f"{m['run']}/cost_report/cost_report.json",
                "manifest_sha256": manifest_sha,
            })
    cheapest = min(rows, key=lambda r: r["annual_usd"]) if rows else None
    return {
        "fleet_id": fleet["fleet_id"],
        "members": members,
        "rows": rows,
        "cheapest": None if cheapest is None else {k: cheapest[k] for k in (
            "gpu_type", "engine", "instances", "annual_usd", "usd_per_1m", "peak_qps_target", "source")},
        "note": "each type is priced with its own run's price (cost_report.json); the target load is the profile's",
    }


def comparison_table(summary: dict[str, Any]) -> pd.DataFrame:
    cols = ["gpu_type", "engine", "precision", "server_peak_qps", "p99_ms", "memory_mb", "usd_per_hour", "usd_per_1m",
            "instances", "annual_usd", "source", "manifest_sha256"]
    if not summary["rows"]:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(summary["rows"])[cols]
    df["manifest_sha256"] = df["manifest_sha256"].str[:12] + "…"
    return df.set_index(["gpu_type", "engine"]).round({"server_peak_qps": 0, "p99_ms": 3, "usd_per_1m": 5})


def plot_fleet(summary: dict[str, Any]):
    """Server peak QPS and cost per 1M inferences per GPU type and engine."""
    import matplotlib.pyplot as plt

    if not summary["rows"]:
        return None
    df = pd.DataFrame(summary["rows"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    df.pivot_table(index="gpu_type", columns="engine", values="server_peak_qps").plot.bar(ax=ax1, rot=0)
    ax1.set_ylabel(f"Server peak QPS at P99 ≤ {df['sla_p99_ms'].iloc[0]:g} ms")
    df.pivot_table(index="gpu_type", columns="engine", values="usd_per_1m").plot.bar(ax=ax2, rot=0, legend=False)
    ax2.set_ylabel("USD per 1M inferences")
    fig.suptitle("Same engines across GPU types (each priced at its own rate)")
    fig.tight_layout()
    return fig


def cheapest_markdown(summary: dict[str, Any]) -> str:
    c = summary["cheapest"]
    lines = [f"## Fleet `{summary['fleet_id']}`", ""]
    for m in summary["members"]:
        lines.append(f"- **{m['gpu_type']}**: {m['status']}" + (f" on `{m['hostname']}` ({m['device_slug']}), "
                                                                f"run `{m['run']}`" if m["run"] else "")
                     + (f" — {m['error']}" if m["error"] else ""))
    if c:
        lines += ["", f"**Cheapest for {c['peak_qps_target']:,.0f} QPS peak: {c['gpu_type']}** with `{c['engine']}`, "
                      f"{c['instances']} instances, {c['annual_usd']:,.0f} USD a year ({c['usd_per_1m']:.4g} USD per "
                      f"1M inferences). *Source: {c['source']}*"]
    else:
        lines += ["", "**No member run succeeded**: nothing to compare."]
    return "\n".join(lines)
