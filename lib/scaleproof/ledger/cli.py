"""`scaleproof ledger …`: add, list, compare, trend, check, choose, report and export, each over the library
functions of this package."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DEFAULT_PATH = "outputs/ledger.sqlite"  # store.DEFAULT_PATH, here without importing the store


def filters(args: argparse.Namespace) -> dict[str, Any]:
    return {"model": args.model, "device": args.device, "since": args.since, "until": args.until,
            "status": args.status}


def cmd_add(args: argparse.Namespace) -> int:
    from .store import add_runs

    out = add_runs(args.runs, args.ledger)
    for r in out.added:
        note = f"copy: {len(r.absent)} listed files absent, the present ones match" if r.checked == "copy" \
            else "verified complete"
        print(f"added   {r.run_id:<28} {r.status:<11} {r.device_count} x {r.device_type:<24} {note}"
              + (f"; not in its manifest, not read: {', '.join(r.unlisted)}" if r.unlisted else ""))
    for folder, reasons in out.refused:
        print(f"REFUSED {folder}: {len(reasons)} problem(s)")
        for p in reasons[:5]:
            print(f"    - {p}")
        if len(reasons) > 5:
            print(f"    … and {len(reasons) - 5} more (scaleproof verify {folder})")
    print(f"{len(out.added)} run(s) in {args.ledger}; {len(out.refused)} refused")
    # a run named outright, not found below a folder (paths compared resolved: `RUN/` and `RUN` are one folder)
    named_refused = {Path(f).resolve() for f, _ in out.refused} & {Path(a).resolve() for a in args.runs}
    return 1 if named_refused or not out.added else 0


def cmd_list(args: argparse.Namespace) -> int:
    from .store import list_runs

    runs = list_runs(args.ledger, **filters(args))
    if args.json:
        print(json.dumps(runs, indent=1, default=str))
        return 0
    print(f"{'run':<28} {'date':<10} {'model':<22} {'ver':<6} {'device':<28} {'status':<11} {'headline engine':<22} "
          f"{'QPS (range)':>22} {'USD/1M':>8}")
    for r in runs:
        e = next((e for e in r["engines"] if e["headline"]), None)
        qps = f"{e['qps']:,.0f} ({e['qps_low']:,.0f}–{e['qps_high']:,.0f})" if e else "-"
        print(f"{r['run_id']:<28} {r['created'][:10]:<10} {r['model'][-22:]:<22} {r['model_version'] or '-':<6} "
              f"{(str(r['device_count']) + ' x ' + r['device_type'])[:28]:<28} {r['status']:<11} "
              f"{(e['engine'] if e else '-'):<22} {qps:>22} {(format(e['usd_per_1m'], '.4g') if e else '-'):>8}")
    print(f"{len(runs)} run(s)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .analysis import compare, num

    c = compare(args.run_a, args.run_b, args.ledger)
    if args.json:
        print(json.dumps(c, indent=1, default=str))
        return 0
    for section in ("identity", "params", "environment"):
        print(f"{section} ({len(c[section])} difference(s)):")
        for d in c[section]:
            print(f"  {d['name']}: {str(d['a'])[:60]} -> {str(d['b'])[:60]}")
    print(f"figures ({len(c['figures'])} difference(s)):")
    for f in c["figures"]:
        verdict = "in one run only" if f["a"] is None or f["b"] is None else \
            {True: "OUTSIDE the measured ranges", False: "within the measured ranges",
             None: "no range measured"}[f["outside_range"]]
        change = f" ({f['change']:+.1%})" if f["change"] is not None else ""

        def show(v: Any, s: Any) -> str:
            return "absent" if v is None else num(v) + (f" [{num(s[0])}–{num(s[1])}]" if s and s[0] < s[1] else "")
        print(f"  {f['engine']} {f['figure']}: {show(f['a'], f['range_a'])} -> {show(f['b'], f['range_b'])}{change}: "
              f"{verdict}")
    return 0


def cmd_trend(args: argparse.Namespace) -> int:
    from .analysis import num, trend

    points = trend(args.figure, args.by, args.ledger, args.engine, **filters(args))
    device = None
    for p in points:
        if p["device_type"] != device:
            device = p["device_type"]
            print(f"{device}:")
        print(f"  {p['created'][:10]}  {p['model'][-22:]:<22} {p['model_version'] or '-':<6} {p['run_id']:<28} "
              f"{p['engine']:<22} {args.figure} {num(p['value'])} [{num(p['low'])}–{num(p['high'])}] ({p['status']})")
    print(f"{len(points)} point(s)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .analysis import check, num

    c = check(args.baseline, args.run, args.max_regression, args.ledger)
    for v in c["verdicts"]:
        worse = "below" if v["figure"] == "qps" else "above"
        lo, hi = v["baseline_range"]
        print(f"{'ok  ' if v['ok'] else 'FAIL'} {v['engine']} {v['figure']}: {num(v['value'])} against the baseline's "
              f"{num(lo)}–{num(hi)} (fails {worse} {num(v['limit'])})")
    print(f"{c['run']} against baseline {c['baseline']} (max regression {c['max_regression_pct']:g}%): "
          f"{'PASSED' if c['ok'] else 'FAILED'}")
    return 0 if c["ok"] else 1


def cmd_choose(args: argparse.Namespace) -> int:
    from .analysis import choice, choice_words
    from .store import list_runs

    for c in choice(list_runs(args.ledger, **filters(args)), args.engine):
        print(choice_words(c))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import render_report

    out = render_report(args.out, args.ledger, models=args.models, device_types=args.devices, since=args.since or "",
                        until=args.until or "", before_run=args.before or "", after_run=args.after or "")
    print(f"ledger report: {args.out} (the runs and the choice as data: {out.with_name('ledger_report.json').name} beside it)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .mlflow_export import export_mlflow

    out = export_mlflow(args.mlflow, args.ledger, args.experiment, **filters(args))
    print(f"MLflow {args.mlflow}, experiment {args.experiment}: {len(out['logged'])} run(s) logged, "
          f"{len(out['already'])} already there")
    return 0


def with_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="only runs whose model contains this (e.g. resnet50)")
    p.add_argument("--device", default=None, help="only runs whose device type contains this (e.g. H200)")
    p.add_argument("--since", default=None, metavar="YYYY-MM-DD", help="only runs made on or after this date")
    p.add_argument("--until", default=None, metavar="YYYY-MM-DD", help="only runs made on or before this date")
    p.add_argument("--status", default=None, choices=["priced", "exploratory", "failed"], help="only runs of this status")


def register(sub: argparse._SubParsersAction) -> None:
    led = sub.add_parser("ledger", help="index run folders in a SQLite ledger; compare, trend, gate and export them",
                         description="The ledger (outputs/ledger.sqlite by default) indexes run folders: local runs, "
                                     "fleet members and folders copied from other machines. The folders stay the "
                                     "source of truth; a run that does not verify is refused with the reason.")
    lsub = led.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")

    def action(name: str, help: str, func, **kw: Any) -> argparse.ArgumentParser:
        p = lsub.add_parser(name, help=help, **kw)
        p.add_argument("--ledger", default=str(DEFAULT_PATH), help=f"the SQLite ledger (default: {DEFAULT_PATH})")
        p.set_defaults(func=func)
        return p

    p = action("add", "check run folders and index them (a folder is searched for runs)", cmd_add,
               description="Exit 1 when a run named outright is refused, or nothing was added.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="a run folder, or a folder holding run folders")
    p = action("list", "the runs of the ledger, oldest first", cmd_list)
    with_filters(p)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p = action("compare", "two runs side by side: parameters, environment, figures against their ranges", cmd_compare)
    p.add_argument("run_a", help="run id (the earlier, the 'before')")
    p.add_argument("run_b", help="run id (the later, the 'after')")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p = action("trend", "a figure over time or model versions, per device type", cmd_trend)
    p.add_argument("--figure", default="usd_per_1m", choices=["usd_per_1m", "qps", "p99_ms", "fleet_usd_per_1m",
                                                             "memory_mb", "instances"], help="the figure (default usd_per_1m)")
    p.add_argument("--by", default="date", choices=["date", "model_version"], help="order of the points")
    p.add_argument("--engine", default=None, help="this engine of each run (default: each run's headline engine)")
    with_filters(p)
    p = action("check", "the performance gate: exit 1 when a run is worse than the baseline's range by more "
                        "than PCT", cmd_check)
    p.add_argument("run", nargs="?", default=None,
                   help="run id to check (default: the newest other run of the baseline's model and device type)")
    p.add_argument("--baseline", required=True, help="run id of the baseline (one per device type)")
    p.add_argument("--max-regression", type=float, required=True, metavar="PCT",
                   help="percent a run's capacity may fall below, or its cost per 1M rise above, the baseline's range")
    p = action("choose", "per model and SLA, the cheapest device type per 1M inferences, or a tie", cmd_choose)
    p.add_argument("--engine", default=None, help="compare this engine of each run (default: each run's headline engine)")
    with_filters(p)
    p = action("report", "render the ledger report (notebooks/09_ledger) to offline HTML", cmd_report)
    p.add_argument("--out", required=True, metavar="FILE.html", help="where the report goes")
    p.add_argument("--models", nargs="*", default=[], help="only these models (parts of the name)")
    p.add_argument("--devices", nargs="*", default=[], help="only these device types (parts of the name)")
    p.add_argument("--since", default=None, metavar="YYYY-MM-DD", help="only runs made on or after this date")
    p.add_argument("--until", default=None, metavar="YYYY-MM-DD", help="only runs made on or before this date")
    p.add_argument("--before", default=None, help="run id of the before/after view's 'before'")
    p.add_argument("--after", default=None, help="run id of the before/after view's 'after'")
    p = action("export", "log the ledger's runs to an MLflow tracking server (idempotent by run id)", cmd_export)
    p.add_argument("--mlflow", required=True, metavar="URI", help="MLflow tracking URI, e.g. http://127.0.0.1:5000")
    p.add_argument("--experiment", default="scaleproof", help="MLflow experiment (default: scaleproof)")
    with_filters(p)
