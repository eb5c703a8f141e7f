"""Which run folders the ledger accepts: a complete run must pass `scaleproof verify` as it stands; a copy that
left the large artifacts behind (ONNX models, LoadGen logs), or flattened the stage results into its top folder,
is checked file by file: every file it holds must be one the manifest lists, with the listed sha256, and the
results the ledger reads must be among them. What the copy lacks is recorded, never assumed to match."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audit import changed_files, params_agree, resolve, verify_run
from ..provenance import sha256_file

# what the ledger reads from a run besides manifest.json (a failed run needs none of them)
READ = ("cost_report/cost_report.json", "benchmark/benchmark.json", "validate/validate.json")
NOT_READ = ("run.log", "env.txt", "gpu_tests.txt")  # notes copied beside a run: named, never read
RUN_ID = re.compile(r"[A-Za-z0-9._-]+")  # what a run id may hold: it names folders and goes into queries


@dataclass
class Checked:
    """What `check_run` found: problems refuse the run; `located` maps a listed path to where the copy has it."""

    kind: str  # "complete" (verify passed as it stands) or "copy" (listed files absent, the present ones hashed)
    problems: list[str] = field(default_factory=list)
    located: dict[str, Path] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def read_manifest(run: Path) -> dict[str, Any]:
    try:
        doc = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{run}/manifest.json cannot be read ({e}): not a scaleproof run folder") from None
    if not isinstance(doc, dict) or "manifest_format" not in doc or not isinstance(doc.get("artifacts"), dict):
        raise ValueError(f"{run}/manifest.json is not a run's manifest (a fleet folder? add its runs/<type> folders)")
    return doc


def check_run(run_dir: str | Path) -> Checked:
    """Check a run folder before it enters the ledger (see the module's docstring)."""
    run = Path(run_dir)
    try:
        manifest = read_manifest(run)
    except ValueError as e:
        return Checked("copy", [str(e)])
    listed: dict[str, dict[str, Any]] = manifest["artifacts"]
    outside = confinement_problems(run, listed, manifest.get("run_id"))
    if outside:
        return Checked("copy", outside, manifest=manifest)
    failed = manifest.get("status") != "succeeded"
    if not failed and all((run / rel).is_file() for rel in listed):
        problems, _ = verify_run(run)
        return Checked("complete", problems, {rel: run / rel for rel in listed}, manifest=manifest)
    out = Checked("copy", manifest=manifest)
    by_name: dict[str, list[str]] = {}
    for rel in listed:
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    for f in sorted(p for p in run.rglob("*") if p.is_file()):
        rel = f.relative_to(run).as_posix()
        if rel == "manifest.json":
            continue
        if rel in listed:
            out.problems += changed_files(run, {rel: listed[rel]})
            out.located[rel] = f
            continue
        digest = sha256_file(f)  # a flattened copy: the same file under its bare name
        same = [r for r in by_name.get(f.name, []) if (listed[r] or {}).get("sha256") == digest]
        if same:
            out.located.setdefault(same[0], f)
        elif f.name in by_name:
            out.problems.append(f"{rel}: changed (its sha256 is none of the manifest's {', '.join(by_name[f.name])})")
        else:
            out.unlisted.append(rel)
    out.absent = sorted(set(listed) - set(out.located))
    if "params.yaml" in out.located:
        out.problems += params_agree(run, manifest) if (run / "params.yaml").is_file() else []
    if failed:
        return out
    missing = [rel for rel in READ if rel not in out.located]
    if missing:
        out.problems.append(f"{', '.join(missing)}: not in this copy, so nothing can be indexed (copy the run's "
                            "stage results with it)")
        return out
    out.problems += claims_hold(out.located)
    return out


def confinement_problems(run: Path, listed: dict[str, Any], run_id: Any) -> list[str]:
    """A run id that is not a plain name, artifact paths that leave the run folder (absolute, `..`), and symbolic
    links in the folder: each would let the ledger read or name something other than the run's own files."""
    problems = []
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        problems.append(f"run id {run_id!r} is not a plain name (letters, digits, '.', '_', '-' only)")
    for rel in listed:
        parts = rel.replace("\\", "/").split("/")
        if rel.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", rel) or ".." in parts or Path(rel).is_absolute():
            problems.append(f"{rel}: the manifest lists a path outside the run folder (absolute or with '..')")
    links = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_symlink())
    problems += [f"{rel}: a symbolic link; a run folder holds its files themselves" for rel in links]
    return problems


def claims_hold(located: dict[str, Path]) -> list[str]:
    """The cost report's claims against the sources the copy holds (a claim whose source was left behind is not
    checked: that source is among the absent files)."""
    cost = json.loads(located["cost_report/cost_report.json"].read_text(encoding="utf-8"))
    report = html.unescape(located["report.html"].read_text(encoding="utf-8")) if "report.html" in located else None
    problems, sources = [], {}
    for c in cost.get("claims") or []:
        src = located.get(c.get("source", ""))
        if src is None:
            continue
        try:
            if src not in sources:
                sources[src] = json.loads(src.read_text(encoding="utf-8"))
            value = resolve(sources[src], c["key"])
        except (KeyError, IndexError, TypeError, ValueError) as e:
            problems.append(f"claim {c.get('id')}: cannot read {c.get('source')} at {c.get('key')} ({e!r})")
            continue
        if value != c.get("value"):
            problems.append(f"claim {c['id']}: the report says {c['value']!r} but {c['source']} has {value!r}")
        if report is not None and str(c.get("text")) not in report:
            problems.append(f"claim {c['id']}: its text {c['text']!r} is not in report.html, which is as the run "
                            "wrote it (its sha256 matches the manifest): the report does not state the claim in full")
    return problems
