"""What the ledger answers across runs: two runs side by side (`compare`), a figure over time or model versions
per device type (`trend`), the CI gate against a baseline run (`check`) and the cheapest device type per model
at the SLA (`choice`). A difference is judged against the measured ranges, never against a single number."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ParamsError
from .store import DEFAULT_PATH, get_run, list_runs

# figure -> (value column, low column, high column) of the engines table; None: no range is measured for it
FIGURES: dict[str, tuple[str, str | None, str | None]] = {
    "usd_per_1m": ("usd_per_1m", "usd_per_1m_low", "usd_per_1m_high"),
    "qps": ("qps", "qps_low", "qps_high"),
    "p99_ms": ("p99_ms", None, None),
    "fleet_usd_per_1m": ("fleet_usd_per_1m", None, None),
    "memory_mb": ("memory_mb", None, None),
    "instances": ("instances", None, None),
}
IDENTITY = ("model", "model_version", "weights_sha256", "device_type", "device_count", "commit", "profile", "status",
            "headline_engine", "sla_p99_ms", "price_id", "usd_per_hour", "accelerators_per_instance", "checked")


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): doc}


def differences(a: dict[str, Any], b: dict[str, Any], skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"name": k, "a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not k.startswith(skip)]


def span(engine: dict[str, Any] | None, figure: str) -> tuple[float, float] | None:
    if engine is None or engine.get(FIGURES[figure][0]) is None:
        return None
    value, lo, hi = (engine.get(c) if c else None for c in FIGURES[figure])
    return (lo if lo is not None else value, hi if hi is not None else value)


def measured(s: tuple[float, float] | None) -> bool:
    return s is not None and s[0] < s[1]


def apart(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Two ranges that do not overlap: the difference lies outside what the runs measured."""
    return a[1] < b[0] or b[1] < a[0]


def compare(run_a: str, run_b: str, ledger: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    """Parameters, environment and figures of two runs side by side; for each figure, whether the difference lies
    outside both runs' measured ranges (True), inside them (False), or cannot be judged (None: neither run
    measured a range for it)."""
    a, b = get_run(ledger, run_a), get_run(ledger, run_b)
    figures = []
    ea, eb = ({e["engine"]: e for e in r["engines"]} for r in (a, b))
    for name in sorted(set(ea) | set(eb)):
        for figure in FIGURES:
            sa, sb = span(ea.get(name), figure), span(eb.get(name), figure)
            va = ea[name][FIGURES[figure][0]] if name in ea else None
            vb = eb[name][FIGURES[figure][0]] if name in eb else None
            if va == vb:
                continue
            judged = sa is not None and sb is not None and (measured(sa) or measured(sb))
            figures.append({"engine": name, "figure": figure, "a": va, "b": vb, "range_a": sa, "range_b": sb,
                            "outside_range": apart(sa, sb) if judged else None,
                            "change": (vb - va) / va if va and vb is not None else None})
    return {"a": run_a, "b": run_b,
            "identity": differences({k: a[k] for k in IDENTITY}, {k: b[k] for k in IDENTITY}),
            "params": differences(a["params"], b["params"], skip=("run_dir",)),
            "environment": differences(flatten(a["environment"]), flatten(b["environment"])),
            "figures": figures}


def headline_of(run: dict[str, Any], engine: str | None = None) -> dict[str, Any] | None:
    name = engine or run["headline_engine"]
    return next((e for e in run["engines"] if e["engine"] == name), None)


def trend(figure: str = "usd_per_1m", by: str = "date", ledger: str | Path = DEFAULT_PATH, engine: str | None = None,
          **filters: Any) -> list[dict[str, Any]]:
    """One point per run (its headline engine, or `engine`), with the measured range, per device type and model
    version, ordered by date or by model version. Failed runs have no figure and are left out."""
    if figure not in FIGURES:
        raise ParamsError(f"figure {figure!r} is not one of {sorted(FIGURES)}")
    if by not in ("date", "model_version"):
        raise ParamsError(f"by must be date or model_version, not {by!r}")
    points = []
    for r in list_runs(ledger, **filters):
        e = headline_of(r, engine)
        s = span(e, figure)
        if s is None:
            continue
        points.append({"device_type": r["device_type"], "model": r["model"], "model_version": r["model_version"],
                       "run_id": r["run_id"], "created": r["created"], "status": r["status"], "engine": e["engine"],
                       "value": e[FIGURES[figure][0]], "low": s[0], "high": s[1], "sla_p99_ms": r["sla_p99_ms"]})
    key = (lambda p: (p["device_type"], p["created"])) if by == "date" else \
        (lambda p: (p["device_type"], p["model_version"], p["created"]))
    return sorted(points, key=key)


# what a run's cost per 1M rests on besides its capacity: two runs differing in one are priced on other terms
PRICING_TERMS = (("SLA (P99 ms)", lambda r: r["sla_p99_ms"]), ("price row", lambda r: r["price_id"]),
                 ("USD per accelerator-hour", lambda r: r["usd_per_hour"]),
                 ("accelerators per instance", lambda r: r["accelerators_per_instance"] or 1),  # unrecorded: 1
                 ("target utilization", lambda r: (r["params"] or {}).get("target_utilization")),
                 ("redundancy", lambda r: (r["params"] or {}).get("redundancy")))


def pricing_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The pricing terms in which `a` and `b` differ (a term one of them did not record is not compared)."""
    return [f"{name} {get(a)!r} against {get(b)!r}" for name, get in PRICING_TERMS
            if get(a) is not None and get(b) is not None and get(a) != get(b)]


def check(baseline: str, run: str | None = None, max_regression_pct: float = 5.0,
          ledger: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    """The performance gate: `run` (default: the newest other priced run of the baseline's model, device type and
    device count) fails when an engine's confirmed capacity is below the baseline's range by more than
    `max_regression_pct` percent, or its cost per 1M above the baseline's range by more than that. Engines are
    matched by name. Both runs must be priced (an exploratory figure gates nothing) and priced on the same terms
    (SLA, price row and rate, accelerators per instance, utilization, redundancy); otherwise it refuses, naming
    the difference."""
    if not 0 <= max_regression_pct < 100:
        raise ParamsError(f"--max-regression {max_regression_pct} must be a percentage in [0, 100)")
    base = get_run(ledger, baseline)
    if base["status"] != "priced":
        raise ParamsError(f"the baseline {baseline} is {base['status']} ({base['status_reason']}), not priced: a gate "
                          "holds a run to a priced baseline; name a priced run (`scaleproof ledger list --status priced`)")
    if run is None:
        newer = [r for r in list_runs(ledger, status="priced") if r["run_id"] != baseline
                 and r["model"] == base["model"] and r["device_type"] == base["device_type"]
                 and r["device_count"] == base["device_count"] and r["engines"]]
        if not newer:
            raise ParamsError(f"no other priced run of {base['model']} on {base['device_count']} x "
                              f"{base['device_type']} in {ledger} to check against {baseline}: name one, or add it first")
        run = newer[-1]["run_id"]
    cand = get_run(ledger, run)
    if cand["device_type"] != base["device_type"] or cand["device_count"] != base["device_count"]:
        raise ParamsError(f"{run} ran on {cand['device_count']} x {cand['device_type']}, the baseline {baseline} on "
                          f"{base['device_count']} x {base['device_type']}: a baseline holds for one device type; "
                          "check against a baseline of the run's own")
    if cand["status"] != "priced":
        raise ParamsError(f"{run} is {cand['status']} ({cand['status_reason']}), not priced: its figures cannot pass "
                          "or fail a gate; check a priced run")
    terms = pricing_differences(base, cand)
    if terms:
        raise ParamsError(f"{run} and the baseline {baseline} are priced on different terms ({'; '.join(terms)}): "
                          "their costs per 1M cannot be compared; check against a baseline priced the same way")
    if not base["engines"]:
        raise ParamsError(f"the baseline {baseline} priced no engine ({base['status']}: {base['status_reason']})")
    common = sorted({e["engine"] for e in base["engines"]} & {e["engine"] for e in cand["engines"]})
    if not common:
        raise ParamsError(f"{run} and {baseline} share no engine (baseline: "
                          f"{', '.join(e['engine'] for e in base['engines'])}; run: "
                          f"{', '.join(e['engine'] for e in cand['engines']) or 'none priced'})")
    k = max_regression_pct / 100
    verdicts = []
    for name in common:
        b, c = headline_of(base, name), headline_of(cand, name)
        floor, ceiling = b["qps_low"] * (1 - k), b["usd_per_1m_high"] * (1 + k)
        verdicts.append({"engine": name, "figure": "qps", "value": c["qps"], "baseline_range": [b["qps_low"], b["qps_high"]],
                         "limit": floor, "ok": c["qps"] >= floor})
        verdicts.append({"engine": name, "figure": "usd_per_1m", "value": c["usd_per_1m"],
                         "baseline_range": [b["usd_per_1m_low"], b["usd_per_1m_high"]], "limit": ceiling,
                         "ok": c["usd_per_1m"] <= ceiling})
    return {"baseline": baseline, "run": run, "max_regression_pct": max_regression_pct, "verdicts": verdicts,
            "ok": all(v["ok"] for v in verdicts)}


def num(v: float) -> str:
    """A figure as people read it: 18,676 QPS, 0.1377 USD."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def words(name: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and w not in {"nvidia", "gb", "hbm3", "80gb"}}


def instance_label(run: dict[str, Any]) -> str:
    """`2 x NVIDIA H200`: cost per 1M is per instance, so instances of one or two devices are told apart."""
    return f"{run['device_count']} x {run['device_type']}"


def latest_per_type(rs: list[dict[str, Any]]) -> dict[str, Any]:
    return max(rs, key=lambda r: (r["created"], r["run_id"]))


def tie_cluster(types: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cheapest type and every type whose range overlaps a member's, transitively: a chain of overlapping
    ranges cannot be ordered by what the runs measured."""
    members = [types[0]]
    grew = True
    while grew:
        grew = False
        for t in types:
            if t not in members and any(not apart(tuple(t["range"]), tuple(m["range"])) for m in members):
                members.append(t)
                grew = True
    return sorted(members, key=lambda t: t["usd_per_1m"])


def choice(runs: list[dict[str, Any]], engine: str | None = None) -> list[dict[str, Any]]:
    """Per model, model version, SLA and profile, the cheapest device type per 1M inferences, per instance shape
    (`instance_label`) and price row: each type is represented by its latest priced run (its headline engine)
    with that run's measured range, never by the cheapest of its runs. A winner is named only when its range is
    apart from every other type's and every type has a measured range; otherwise the types whose ranges chain
    together with the cheapest's (`tie_cluster`), and those without a measured range, are a tie. The span of the
    headline figures over all of a type's runs is shown beside it. With `engine`, that engine of each run stands
    for it instead of the headline engine (runs that did not price it are left out)."""
    groups: dict[tuple[str, str, float | None, str | None], dict[tuple[str, str | None], list[dict[str, Any]]]] = {}
    for r in runs:
        if r["status"] == "priced" and headline_of(r, engine):
            key = (r["model"], r["model_version"] or "", r["sla_p99_ms"], r["profile"])
            groups.setdefault(key, {}).setdefault((instance_label(r), r["price_id"]), []).append(r)
    out = []
    for (model, version, sla, profile), by_type in sorted(groups.items(), key=lambda kv: tuple(
            str(x) for x in kv[0])):
        types = []
        for (device, price_id), rs in by_type.items():
            heads = [headline_of(r, engine) for r in rs]
            run = latest_per_type(rs)
            head = headline_of(run, engine)
            foreign = sorted({r["price_id"] for r in rs if r["price_accelerator"] and
                              not words(r["price_accelerator"]) & words(rs[0]["device_type"])})
            types.append({"device_type": device, "price_id": price_id, "runs": len(rs),
                          "run_ids": sorted(r["run_id"] for r in rs), "best_run": run["run_id"],
                          "engine": head["engine"], "usd_per_1m": head["usd_per_1m"],
                          "range": [head["usd_per_1m_low"], head["usd_per_1m_high"]],
                          "span": [min(h["usd_per_1m"] for h in heads), max(h["usd_per_1m"] for h in heads)],
                          "qps": head["qps"],
                          "prices": [f"{run['price_id']} ({run['price_accelerator']}, {run['usd_per_hour']} USD/h)"],
                          "priced_with_another_devices_row": foreign})
        types.sort(key=lambda t: t["usd_per_1m"])
        cluster = tie_cluster(types)
        unranged = [t for t in types if not t["range"][0] < t["range"][1]]
        tied = cluster + [t for t in unranged if t not in cluster]
        winner = len(types) > 1 and len(cluster) == 1 and not unranged
        out.append({"model": model, "model_version": version, "sla_p99_ms": sla, "profile": profile,
                    "types": types, "cheapest": types[0]["device_type"] if winner else None,
                    "tie": [t["device_type"] for t in tied] if len(types) > 1 and not winner else [],
                    "unranged": [t["device_type"] for t in unranged],
                    "only_type": types[0]["device_type"] if len(types) == 1 else None})
    return out


def choice_words(c: dict[str, Any]) -> str:
    """One choice as a sentence an auditor can check against the table: which runs were compared, and why a
    winner is named or not."""
    def fig(t: dict[str, Any]) -> str:
        (lo, hi), (s_lo, s_hi) = t["range"], t["span"]
        rng = f"range {lo:.4g}–{hi:.4g}" if lo < hi else "no measured range"
        return (f"{t['device_type']} {t['usd_per_1m']:.4g} USD per 1M (`{t['engine']}`, run `{t['best_run']}`, "
                f"price row {t['price_id']}, {rng}"
                + (f"; the latest of its {t['runs']} runs, which gave {s_lo:.4g}–{s_hi:.4g}" if t["runs"] > 1 else "")
                + ")")
    version = f" {c['model_version']}" if c.get("model_version") else ""
    head = f"{c['model']}{version} at P99 ≤ {c['sla_p99_ms']:g} ms (profile {c.get('profile')}): "
    if c["only_type"]:
        text = head + f"only {fig(c['types'][0])} is in the ledger; nothing to choose between"
    elif c["tie"]:
        why = "their latest runs' measured cost ranges overlap, directly or through one another"
        if c.get("unranged"):
            why += f"; {', '.join(c['unranged'])} has no measured range, and a single number names no winner"
        text = head + "a tie between " + " and ".join(fig(t) for t in c["types"] if t["device_type"] in c["tie"]) + \
            f": {why}, so none is cheaper beyond the measured spread" + \
            "".join(f"; dearer beyond every tied range: {fig(t)}" for t in c["types"] if t["device_type"] not in c["tie"])
    else:
        text = head + f"{c['cheapest']} is cheaper, its range apart from every other's: " + \
            "; ".join(fig(t) for t in c["types"])
    notes = [f"{t['device_type']} was priced with the price row {', '.join(t['priced_with_another_devices_row'])} of "
             "another device (the price table it ran with had none of its own), so its cost differs from the others' "
             "by capacity alone" for t in c["types"] if t["priced_with_another_devices_row"]]
    engines = sorted({t["engine"] for t in c["types"]})
    if len(engines) > 1:
        notes.append(f"The types are represented by different engines ({', '.join(engines)}), each its run's headline "
                     "engine: name one with --engine to compare the same engine on every type")
    return text + (". " + ". ".join(notes) if notes else "") + "."
