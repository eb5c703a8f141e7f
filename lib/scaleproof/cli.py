"""`scaleproof` command line: run the chain, list parameters."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import ScaleproofError


def cmd_run(args: argparse.Namespace) -> int:
    from .config import Params, parse_override
    from .pipeline import run_chain

    overrides = dict(parse_override(s) for s in args.set)
    params = Params.from_yaml(args.params, overrides)  # every parameter checked before any work
    outcome = run_chain(params, run_id=args.run_id, outputs=args.outputs, progress=not args.quiet)
    return 0 if outcome.ok else 1


def cmd_params(args: argparse.Namespace) -> int:
    from .config import describe

    rows = describe()
    if args.markdown:
        print("| parameter | type | default | meaning |\n| --- | --- | --- | --- |")
        for r in rows:
            meaning = r["help"].replace("|", "\\|")  # a bare | would split the table cell
            print(f"| `{r['name']}` | {r['type']} | `{r['default']}` | {meaning} |")
    else:
        for r in rows:
            print(f"{r['name']:<20} {r['type']:<14} {r['default']!s:<22} {r['help']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="scaleproof", description="Export, calibrate, build, validate, benchmark and "
                                 "price a PyTorch model on this machine, as a reproducible papermill run.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the six stage notebooks into outputs/<run_id>/",
                         description="Run the chain with papermill. The run is published to OUTPUTS/RUN_ID only "
                                     "if every stage succeeds; a failed run goes to OUTPUTS/failed/RUN_ID.")
    run.add_argument("--params", required=True, metavar="FILE.yaml", help="parameter profile, e.g. params/default.yaml")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="override one parameter (value read as YAML); repeatable")
    run.add_argument("--run-id", default=None, help="name of the run folder (default: time, model and a random tag)")
    run.add_argument("--outputs", default="outputs", help="folder that holds runs (default: outputs)")
    run.add_argument("--quiet", action="store_true", help="no per-cell progress bars")
    run.set_defaults(func=cmd_run)

    par = sub.add_parser("params", help="list every parameter with its type, default and meaning")
    par.add_argument("--markdown", action="store_true", help="print a Markdown table")
    par.set_defaults(func=cmd_params)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ScaleproofError as e:
        print(f"scaleproof: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
