"""`scaleproof prospectus`: the prospectus notebook executed with papermill over a params file, rendered to
offline HTML beside prospectus.json, prospectus.xlsx and csv/; or, with --no-html, the figures alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def params_epilog() -> str:
    from .spec import describe

    return "params file fields:\n" + "\n".join(f"  {name} ({kind}): {meaning}" for name, kind, meaning in describe())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prospectus", help="the fleet's cost per year in your currency, against revenue and margin, "
                                          "over one or several priced runs",
                       description="Price the fleets that serve one or several measured models (priced run "
                                   "folders) over a day (peak-sized and autoscaled) and over fiscal years (low, "
                                   "base and high cases), in a currency at a dated exchange rate; write "
                                   "prospectus.html, prospectus.json, prospectus.xlsx and csv/ into --out.",
                       epilog=params_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", required=True, metavar="FILE.yaml",
                   help="prospectus params: models (run folders and traffic), currency, years, revenue; see "
                        "params/prospectus-example.yaml")
    p.add_argument("--out", default="outputs/prospectus", metavar="DIR",
                   help="folder the prospectus is written to (default: outputs/prospectus)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override one top-level param (value read as YAML), e.g. --set years=5; repeatable")
    p.add_argument("--currency", default="", help="currency of every amount (USD, CNY, EUR or a row of the rate "
                                                  "table); default: the params file's")
    p.add_argument("--rate", default="", metavar="CUR=UNITS_PER_USD@DATE",
                   help="an exchange rate you read, e.g. CNY=7.18@2026-12-07, instead of the shipped table's")
    p.add_argument("--no-html", action="store_true",
                   help="write prospectus.json, the workbook and the CSVs only, without executing the notebook")
    p.set_defaults(func=cmd_prospectus)


def overrides_of(args: argparse.Namespace) -> dict:
    from ..config import parse_override

    out = dict(parse_override(s) for s in args.set)
    if args.currency:
        out["currency"] = args.currency
    if args.rate:
        out["rate"] = args.rate
        out.setdefault("currency", args.rate.split("=", 1)[0])
    return out


def cmd_prospectus(args: argparse.Namespace) -> int:
    from .. import paths
    from .forecast import build
    from .outputs import HTML_NAME, JSON_NAME, NOTEBOOK_NAME, output_paths, write_outputs
    from .spec import load_spec

    overrides = overrides_of(args)
    spec = load_spec(args.params, overrides)  # every param checked before any work
    out = Path(args.out).resolve()
    if args.no_html:
        result = build(spec, args.params, Path.cwd())
        written = list(write_outputs(result, out).values())
    else:
        from ..pipeline import execute_notebook
        from ..presentation.common import render_html

        out.mkdir(parents=True, exist_ok=True)
        execute_notebook(paths.notebooks_dir() / "10_prospectus.ipynb", out / NOTEBOOK_NAME,
                         {"params_file": args.params, "root": str(Path.cwd()),
                          "out_dir": str(out), "overrides_json": json.dumps(overrides)})
        render_html(out / NOTEBOOK_NAME, out / HTML_NAME)
        result = json.loads((out / JSON_NAME).read_text())
        written = [out / NOTEBOOK_NAME, out / HTML_NAME, *output_paths(result, out)]
    print("\n".join(summary_lines(result, out, args.out, written)))
    return 0


def summary_lines(result: dict, out: Path, shown: str, written: list[Path]) -> list[str]:
    from .money import fmt, fmt_per_request
    from .outputs import HTML_NAME, NOTEBOOK_NAME

    cur, pol, h = result["currency"], result["policy"], result["headline"]
    names = sorted(p.relative_to(out).as_posix() for p in written)
    stale = [n for n in (HTML_NAME, NOTEBOOK_NAME) if (out / n).exists() and n not in names]
    lines = [f"prospectus written to {shown}: " + ", ".join(names)
             + (f"; {', '.join(stale)} in that folder {'is' if len(stale) == 1 else 'are'} from an earlier run, "
                "not rewritten" if stale else "")]
    for m in result["models"]:
        f = m["today"]["fleets"][pol]
        lines.append(f"  {m['name']}: {m['run']['before']['engine']} -> {m['run']['after']['engine']}, fleet cost per "
                     f"1M {fmt(f['before']['fleet_per_1m'], cur, 2)} -> {fmt(f['after']['fleet_per_1m'], cur, 2)} "
                     f"(floor {fmt(f['after']['floor_per_1m'], cur, 2)}), per request "
                     f"{fmt_per_request(f['before']['fleet_per_request'], cur)} -> "
                     f"{fmt_per_request(f['after']['fleet_per_request'], cur)}")
    lines.append(f"  fiscal {h['fiscal_year']} (base case, {pol}): inference OPEX {fmt(h['opex_before'], cur)} -> "
                 f"{fmt(h['opex_after'], cur)}, saving {fmt(h['savings'], cur)}; gross margin "
                 f"{h['margin_contribution_pp']:+.2f} pp")
    for m in result["models"]:
        for side in ("before", "after"):
            e = m["run"][side]
            if e.get("accepted_flags"):
                lines.append(f"  {m['name']}: {side} ({e['engine']}) is flagged {', '.join(e['accepted_flags'])} by its "
                             "benchmark and priced because the params accept it (accept_flags)")
    lines.append(f"  {result['rate_words']}")
    return lines
