"""The ledger report (notebooks/09_ledger, rendered to offline HTML): the runs, cost per 1M, capacity and P99 over
time with their ranges per device type and model version, a before/after of two runs, and the cheapest device
type per model at the SLA (ties named)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .analysis import choice, choice_words, compare, headline_of, instance_label, num
from .store import DEFAULT_PATH, add_runs, connect, get_run, iso_date, list_runs

TRENDS = (("usd_per_1m", "USD per 1M inferences"), ("qps", "confirmed capacity per accelerator, QPS"),
          ("p99_ms", "P99 at that capacity, ms"))


def open_ledger(ledger_path: str, runs_dir: str) -> tuple[Path, list[tuple[str, list[str]]]]:
    """The ledger to report on: `ledger_path`, or else one built now from the run folders under `runs_dir`
    (with the runs it refused)."""
    if ledger_path:
        return Path(ledger_path), []
    built = Path(tempfile.mkdtemp(prefix="scaleproof-ledger-")) / "ledger.sqlite"
    return built, add_runs([runs_dir], built).refused


def select(ledger: str | Path, models: list[str], device_types: list[str], since: str = "",
           until: str = "") -> list[dict[str, Any]]:
    """Runs matching any of `models` and any of `device_types` (parts of the names; empty: all) in the dates."""
    runs = list_runs(ledger, since=since or None, until=until or None)
    return [r for r in runs
            if (not models or any(m.lower() in r["model"].lower() for m in models))
            and (not device_types or any(d.lower() in r["device_type"].lower() for d in device_types))]


def runs_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in runs:
        e = headline_of(r)
        rows.append({"run": r["run_id"], "date": r["created"][:10], "model": r["model"],
                     "version": r["model_version"] or "-", "device": instance_label(r), "commit": (r["commit"] or "")[:8],
                     "profile": r["profile"] or "-", "status": r["status"], "headline engine": e["engine"] if e else "-",
                     "QPS (range)": f"{e['qps']:,.0f} ({e['qps_low']:,.0f}–{e['qps_high']:,.0f})" if e else "-",
                     "P99 ms": f"{e['p99_ms']:.2f}" if e else "-",
                     "USD per 1M (range)": f"{e['usd_per_1m']:.4g} ({e['usd_per_1m_low']:.4g}–{e['usd_per_1m_high']:.4g})"
                     if e else "-", "checked": r["checked"] + (f", {len(r['absent'])} files absent" if r["absent"] else "")})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def plot_trends(runs: list[dict[str, Any]]):
    """Each figure over time per device type (colour) and model version (marker), with the measured range."""
    import matplotlib.pyplot as plt

    points = [(r, headline_of(r)) for r in runs if r["status"] != "failed" and headline_of(r)]
    if not points:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    labels = sorted({instance_label(r) for r, _ in points})
    versions = sorted({r["model_version"] or "-" for r, _ in points})
    markers = dict(zip(versions, "osD^vP*X", strict=False))
    for ax, (figure, title) in zip(axes, TRENDS, strict=True):
        for i, label in enumerate(labels):
            for version in versions:
                pts = [(r, e) for r, e in points if instance_label(r) == label and (r["model_version"] or "-") == version]
                if not pts:
                    continue
                x = pd.to_datetime([r["created"] for r, _ in pts])
                y = [e[figure] for _, e in pts]
                lo = [e[figure] - e.get(f"{figure}_low", e[figure]) if f"{figure}_low" in e else 0 for _, e in pts]
                hi = [e.get(f"{figure}_high", e[figure]) - e[figure] if f"{figure}_high" in e else 0 for _, e in pts]
                ax.errorbar(x, y, yerr=[lo, hi], fmt=markers.get(version, "o"), color=f"C{i}", capsize=3,
                            label=f"{label} · version {version}")
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("Headline engine of each run over time (bars: the run's measured range)")
    fig.tight_layout()
    return fig


def default_pair(runs: list[dict[str, Any]], before: str, after: str) -> tuple[str, str] | None:
    """The runs of the before/after view: as given, else the oldest and the newest priced run of the most
    frequent model among the selected runs."""
    if before and after:
        return before, after
    priced = [r for r in runs if r["status"] == "priced"]
    if not priced:
        return None
    model = max({r["model"] for r in priced}, key=lambda m: sum(r["model"] == m for r in priced))
    of_model = [r for r in priced if r["model"] == model]
    return (of_model[0]["run_id"], of_model[-1]["run_id"]) if len(of_model) > 1 else None


def before_after(ledger: str | Path, before: str, after: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Capacity per accelerator, accelerator memory and cost per 1M of the two runs' headline engines, and the
    full comparison (which differences lie outside the measured ranges)."""
    runs = {r["run_id"]: r for r in list_runs(ledger) if r["run_id"] in (before, after)}
    c = compare(before, after, ledger)
    rows = []
    for label, rid in (("before", before), ("after", after)):
        r = runs[rid]
        e = headline_of(r) or {}
        rows.append({"": label, "run": rid, "date": r["created"][:10], "device": instance_label(r),
                     "engine": e.get("engine", "-"),
                     "capacity per accelerator, QPS": f"{e['qps']:,.0f} ({e['qps_low']:,.0f}–{e['qps_high']:,.0f})" if e else "-",
                     "accelerator memory MB": f"{e['memory_mb']:,.0f}" if e.get("memory_mb") else "-",
                     "USD per 1M": f"{e['usd_per_1m']:.4g} ({e['usd_per_1m_low']:.4g}–{e['usd_per_1m_high']:.4g})" if e else "-"})
    return pd.DataFrame(rows).set_index(""), c


def before_after_markdown(c: dict[str, Any]) -> str:
    verdict = {True: "**outside** both runs' measured ranges", False: "within the measured ranges",
               None: "not judged (no range measured)"}
    named = list(dict.fromkeys(d["name"] for d in c["identity"] + c["params"]))
    lines = [f"**{len(c['params'])} parameter and {len(c['environment'])} environment difference(s)**"
             + (": " + ", ".join(f"`{n}`" for n in named[:12]) + (" …" if len(named) > 12 else "") if named else ""), ""]
    for f in c["figures"]:
        if f["figure"] in ("qps", "usd_per_1m", "memory_mb") and f["a"] is not None and f["b"] is not None:
            lines.append(f"- `{f['engine']}` {f['figure']}: {num(f['a'])} → {num(f['b'])} "
                         f"({f['change']:+.1%}), {verdict[f['outside_range']]}")
    return "\n".join(lines)


def choice_markdown(runs: list[dict[str, Any]]) -> str:
    found = choice(runs)
    if not found:
        return "No priced run among the selected runs: no device type can be chosen."
    return "\n".join(f"- {choice_words(c)}" for c in found)


def summary(runs: list[dict[str, Any]], refused: list[tuple[str, list[str]]] | None = None) -> dict[str, Any]:
    """The report as data (ledger_report.json beside the HTML)."""
    return {"runs": [{k: r[k] for k in ("run_id", "created", "model", "model_version", "device_type", "device_count",
                                        "commit", "status", "headline_engine", "tie", "checked", "manifest_sha256")}
                     | {"headline": {k: v for k, v in (headline_of(r) or {}).items() if k != "run_id"}} for r in runs],
            "choice": [{**c, "words": choice_words(c)} for c in choice(runs)],
            "refused": [{"folder": f, "reasons": reasons} for f, reasons in (refused or [])]}


def render_report(out: str | Path, ledger: str | Path = DEFAULT_PATH, **parameters: Any) -> Path:
    """notebooks/09_ledger executed by papermill on `ledger` and rendered without code to `out` (offline HTML),
    with ledger_report.json (the runs and the choice as data) beside it."""
    import json

    from .. import paths
    from ..pipeline import execute_notebook
    from ..presentation.common import render_html
    from ..provenance import atomic_write_bytes

    connect(ledger).close()  # a missing or unreadable ledger fails here, with how to fix it
    for key in ("before_run", "after_run"):  # a run id that is not there fails now, not inside the notebook
        if parameters.get(key):
            get_run(ledger, parameters[key])
    for key, option in (("since", "--since"), ("until", "--until")):
        if parameters.get(key):
            iso_date(parameters[key], option)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"ledger_path": str(Path(ledger).resolve()), **parameters}
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "09_ledger.ipynb"
        execute_notebook(paths.notebooks_dir() / "09_ledger.ipynb", executed, params)
        render_html(executed, out)
    runs = select(ledger, parameters.get("models") or [], parameters.get("device_types") or [],
                  parameters.get("since", ""), parameters.get("until", ""))
    atomic_write_bytes(out.with_name("ledger_report.json"),
                       json.dumps(summary(runs), indent=1, default=str).encode("utf-8"))
    return out
