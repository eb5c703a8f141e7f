"""The fleet comparison: the same engines and precisions across GPU types, from the member runs' JSON.

Every row names the member run and the sha256 of its manifest, so a figure in the fleet report
traces back to the run that measured it (and `scaleproof verify` re-checks that run).
"""

from __future__ import annotations

import re
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
                                              "error", "code")})
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
                "annual_usd_range": sorted((e.get("range") or {}).get("annual_usd") or [e["annual_usd"]] * 2),
                "peak_qps_target": cost["assumptions"]["peak_qps"], "sla_p99_ms": cost["assumptions"]["sla_p99_ms"],
                "gpu_peak_allocated_mb": (b.get("memory") or {}).get("gpu_peak_allocated_mb"),
                "source": f"{m['run']}/cost_report/cost_report.json",
                "manifest_sha256": manifest_sha,
            })
    cheapest = min(rows, key=lambda r: r["annual_usd"]) if rows else None
    warnings = member_warnings(fleet["members"])
    tie = within_spread(rows, cheapest) if cheapest else None
    if tie:
        warnings.append(tie)
    return {
        "fleet_id": fleet["fleet_id"],
        "members": members,
        "rows": rows,
        "warnings": warnings,
        "cheapest": None if cheapest is None or tie else {k: cheapest[k] for k in (
            "gpu_type", "engine", "instances", "annual_usd", "usd_per_1m", "peak_qps_target", "source")},
        "note": "each type is priced with its own run's price (cost_report.json); the target load is the profile's",
    }


def member_warnings(members: list[dict[str, Any]]) -> list[str]:
    """What makes a comparison between members doubtful: members that shared a host (they competed for its
    cores, memory bandwidth and maybe its device), a measured device unlike the member's type label, and
    members that ran different code."""
    ran = [m for m in members if m["status"] == "succeeded"]
    out = []
    by_host: dict[str, list[str]] = {}
    for m in ran:
        by_host.setdefault(m.get("hostname") or "?", []).append(m["gpu_type"])
    out += [f"{', '.join(types)} ran on the same host `{host}` and may have competed for it: their figures are not "
            f"independent" for host, types in by_host.items() if len(types) > 1]
    for m in ran:  # every word of the label must be a word of the device's name (CPU-A is not cpu-amd-epyc)
        label, device = m["gpu_type"].lower(), (m.get("device_slug") or "").lower()
        if not set(re.split(r"[^a-z0-9]+", label)) <= set(re.split(r"[^a-z0-9]+", device)):
            out.append(f"{m['gpu_type']}: the measured device is `{device or 'unknown'}`, not what the type label "
                       f"says")
    commits = {m["gpu_type"]: (m.get("code") or {}).get("commit") for m in ran}
    if len({c for c in commits.values()}) > 1:
        out.append("members ran different code: " + ", ".join(f"{t} at {c or 'unknown'}" for t, c in commits.items()))
    return out


def within_spread(rows: list[dict[str, Any]], cheapest: dict[str, Any]) -> str | None:
    """A warning when the cheapest type's annual cost range overlaps another type's best range: the
    difference is inside the measured spread of the repeated searches, so no type is named cheapest."""
    def span(r):
        return r.get("annual_usd_range") or [r["annual_usd"], r["annual_usd"]]

    best_of = {}
    for r in rows:
        if r["gpu_type"] not in best_of or r["annual_usd"] < best_of[r["gpu_type"]]["annual_usd"]:
            best_of[r["gpu_type"]] = r
    lo, hi = span(cheapest)
    close = [t for t, r in best_of.items() if t != cheapest["gpu_type"] and span(r)[0] <= hi]
    if not close:
        return None
    return (f"no cheapest type named: {cheapest['gpu_type']} ({lo:,.0f}–{hi:,.0f} USD a year) and "
            + ", ".join(f"{t} ({span(best_of[t])[0]:,.0f}–{span(best_of[t])[1]:,.0f})" for t in close)
            + " overlap within their measured spread")


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
    for w in summary.get("warnings", []):
        lines += ["", f"**Warning:** {w}"]
    if c:
        lines += ["", f"**Cheapest for {c['peak_qps_target']:,.0f} QPS peak: {c['gpu_type']}** with `{c['engine']}`, "
                      f"{c['instances']} instances, {c['annual_usd']:,.0f} USD a year ({c['usd_per_1m']:.4g} USD per "
                      f"1M inferences). *Source: {c['source']}*"]
    elif summary["rows"]:
        lines += ["", "**No cheapest type is named**: see the warning above."]
    else:
        lines += ["", "**No member run succeeded**: nothing to compare."]
    return "\n".join(lines)
