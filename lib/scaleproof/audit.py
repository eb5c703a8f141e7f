"""Checking a run after the fact: `verify` (nothing changed, every claim matches its source) and
`reproduce` (the same parameters again give the same results, timings within a tolerance)."""

from __future__ import annotations

import html
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from . import paths, stages
from .config import Params, load_yaml, quote
from .errors import ArtifactError
from .provenance import read_json, sha256_file

KEY_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def resolve(doc: Any, key: str) -> Any:
    """`engines[1].capacity.qps` -> that value of a JSON document."""
    for name, index in KEY_TOKEN.findall(key):
        doc = doc[int(index)] if index else doc[name]
    return doc


def refused_path(base: Path, rel: Any) -> str | None:
    """Why `rel` (a path a record lists) may not be opened under `base`: it leaves the folder (absolute, `..`, or
    resolving outside) or passes through a symbolic link. None when it stays inside. Verify reads nothing else."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return "not a relative path"
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or Path(rel).is_absolute() or ".." in parts:
        return "leaves the folder it is checked in (refused, not read)"
    cur = base
    for part in parts:
        cur = cur / part
        if cur.is_symlink():
            return "a symbolic link (refused, not followed)"
    try:
        if not (base / rel).resolve().is_relative_to(base.resolve()):
            return "leaves the folder it is checked in (refused, not read)"
    except (OSError, RuntimeError) as e:
        return f"cannot be resolved ({e})"
    return None


def changed_files(base: Path, listed: dict[str, dict[str, Any]]) -> list[str]:
    """Files of a manifest's listing that leave `base`, are missing, unreadable or whose sha256 differs."""
    problems = []
    for rel, meta in listed.items():
        if why := refused_path(base, rel):
            problems.append(f"{rel}: {why}")
            continue
        f = base / rel
        if not f.is_file():
            problems.append(f"{rel}: missing")
            continue
        try:
            actual = sha256_file(f)
        except OSError as e:
            problems.append(f"{rel}: unreadable ({e.strerror or e})")
            continue
        expected = meta.get("sha256") if isinstance(meta, dict) else meta  # a fleet's listing maps to the digest
        if actual != expected:
            problems.append(f"{rel}: changed (sha256 {actual[:16]}…, manifest says {str(expected)[:16]}…)")
    return problems


def walk_folder(base: Path) -> tuple[list[str], list[str], list[str]]:
    """Every entry under `base`, links never followed: regular files, folders (relative, POSIX), and findings for
    symbolic links and anything that is neither a file nor a folder (a FIFO, a socket, a device)."""
    files, folders, problems = [], [], []
    for top, dirs, names in os.walk(base, followlinks=False):
        top_path = Path(top)
        for name in sorted(dirs + names):
            p = top_path / name
            rel = p.relative_to(base).as_posix()
            if p.is_symlink():
                problems.append(f"{rel}: a symbolic link (to {quote(os.readlink(p))}); verify refuses links in a "
                                "checked folder and never follows them")
            elif p.is_dir():
                folders.append(rel)
            elif p.is_file():
                files.append(rel)
            else:
                problems.append(f"{rel}: not a regular file (a FIFO, socket or device); refused")
        dirs[:] = [d for d in dirs if not (top_path / d).is_symlink()]
    return sorted(files), sorted(folders), problems


def read_finding(path: Path, problems: list[str], rel: str) -> Any:
    """A JSON document, or None with the reason appended to `problems` (missing, unreadable, not UTF-8, malformed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{rel}: missing")
    except UnicodeDecodeError as e:
        problems.append(f"{rel}: not UTF-8 text ({e.reason} at byte {e.start})")
    except json.JSONDecodeError as e:
        problems.append(f"{rel}: not valid JSON ({e.msg} at line {e.lineno})")
    except OSError as e:
        problems.append(f"{rel}: unreadable ({e.strerror or e})")
    return None


def params_agree(run: Path, manifest: dict[str, Any]) -> list[str]:
    """The parameters recorded in the manifest and in params.yaml must be the same values."""
    try:  # as written, not through today's Params: a run made by an older version keeps verifying
        recorded = load_yaml((run / "params.yaml").read_text(encoding="utf-8"), "params.yaml")
        if not isinstance(recorded, dict):
            raise ValueError("not a mapping")
    except (OSError, ValueError, yaml.YAMLError) as e:
        return [f"params.yaml: cannot be read ({e})"]
    stated = manifest.get("params") or {}
    differ = sorted(k for k in set(recorded) | set(stated) if recorded.get(k) != stated.get(k))
    problems = ["parameters differ between manifest.json and params.yaml: " + ", ".join(
        f"{k} ({stated.get(k)!r} vs {recorded.get(k)!r})" for k in differ[:5])] if differ else []
    for stage in paths.STAGES:  # each stage result records the values of the parameters its notebook declares
        try:
            made_with = read_json(paths.result_path(run, stage)).get("made_with") or {}
        except (OSError, ValueError, AttributeError):
            continue  # a missing or malformed result is reported by the artifact checks
        off = sorted(k for k in made_with if k in stated and made_with[k] != stated[k])
        if off:
            problems.append(f"{paths.result_path('.', stage).as_posix().removeprefix('./')}: made with "
                            + ", ".join(f"{k}={made_with[k]!r}" for k in off[:5]) + " but manifest.json says "
                            + ", ".join(f"{k}={stated[k]!r}" for k in off[:5]))
    return problems


def verify_run(run_dir: str | Path, manifest_sha256: str | None = None) -> tuple[list[str], dict[str, int]]:
    """Problems found (empty when the run verifies) and what was checked. Never raises on what it reads: a missing,
    unreadable or malformed file is one finding among the others."""
    run = Path(run_dir)
    problems: list[str] = []
    if not run.is_dir():
        return [f"{run}: not a folder"], {"artifacts": 0, "claims": 0}
    if (run / "manifest.json").is_symlink():
        return ["manifest.json: a symbolic link; verify refuses links and never follows them"], \
            {"artifacts": 0, "claims": 0}
    manifest = read_finding(run / "manifest.json", problems, "manifest.json")
    if not isinstance(manifest, dict):
        if manifest is not None:
            problems.append("manifest.json: not a JSON object")
        problems.append(f"{run} has no readable manifest.json: it is not a verifiable scaleproof run folder")
        return problems, {"artifacts": 0, "claims": 0}
    if manifest_sha256 and (actual := sha256_file(run / "manifest.json")) != manifest_sha256.strip().lower():
        problems.append(f"manifest.json: sha256 {actual} is not the {manifest_sha256} printed when the run ended "
                        "(the manifest was changed)")
    if manifest.get("status") != "succeeded":
        problems.append(f"the run's status is {manifest.get('status')!r}: {manifest.get('error')}")
    listed = manifest.get("artifacts")
    folders = set(manifest.get("folders") or [])  # what the run made; older manifests do not list folders
    if not isinstance(listed, dict):
        problems.append("manifest.json: no artifacts listing")
        listed = {}
    problems += changed_files(run, listed)
    on_disk, dirs, odd = walk_folder(run)  # everything on disk, links refused, never followed
    problems += odd
    problems += [f"{rel}: not in the manifest (added after the run)" for rel in on_disk
                 if rel != "manifest.json" and rel not in listed]
    problems += [f"{rel}/: an empty folder not made by the run (added after it)" for rel in dirs
                 if "folders" in manifest and rel not in folders and not any((run / rel).iterdir())]
    problems += params_agree(run, manifest)
    cost = read_finding(run / "cost_report" / "cost_report.json", problems, "cost_report/cost_report.json")
    claims = [c for c in (cost.get("claims", []) if isinstance(cost, dict) else []) if isinstance(c, dict)]
    try:
        report = html.unescape((run / "report.html").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"report.html: cannot be read as UTF-8 text ({e})")
        report = None
    sources: dict[str, Any] = {}
    for c in claims:
        if why := refused_path(run, c.get("source")):
            problems.append(f"claim {c.get('id')}: its source {quote(c.get('source'))} {why}")
            continue
        try:
            if c["source"] not in sources:
                sources[c["source"]] = read_finding(run / c["source"], problems, c["source"])
            value = resolve(sources[c["source"]], c["key"])
        except (KeyError, IndexError, TypeError, ValueError) as e:
            problems.append(f"claim {c.get('id')}: cannot read {c.get('source')} at {c.get('key')} ({e!r})")
            continue
        if value != c.get("value"):
            problems.append(f"claim {c['id']}: the report says {c['value']!r} but {c['source']} has {value!r} at {c['key']}")
        if report is not None and str(c.get("text")) not in report:
            problems.append(f"claim {c['id']}: its text {c['text']!r} is not in report.html (the report was edited)")
    return problems, {"artifacts": len(listed), "claims": len(claims)}


@dataclass
class Check:
    check: str
    original: Any
    reproduced: Any
    kind: str  # "exact" or "timing"
    ok: bool


def rel_close(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(abs(a), abs(b))


def compare_runs(original: Path, reproduced: Path, timing_tolerance: float) -> list[Check]:
    """Every non-timing result must match exactly; timing results within `timing_tolerance` (relative)."""
    load = stages.read_typed  # a result of another format is refused, not compared
    checks = []
    for stage, key in (("01_export", "onnx_sha256"), ("02_calibrate", "calib_data_sha256"),
                       ("02_calibrate", "int8_onnx_sha256")):
        a, b = getattr(load(original, stage), key), getattr(load(reproduced, stage), key)
        checks.append(Check(f"{paths.stage_key(stage)}.{key}", a, b, "exact", a == b))
    va = {r.engine: r for r in load(original, "04_validate").engines}
    vb = {r.engine: r for r in load(reproduced, "04_validate").engines}
    for name in sorted(set(va) | set(vb)):
        for key in ("top1", "top1_agreement", "cosine_mean", "output_err", "max_abs_err", "passed"):
            a, b = getattr(va.get(name), key, None), getattr(vb.get(name), key, None)
            checks.append(Check(f"validate {name} {key}", a, b, "exact", a == b))
    ba = {r.engine: r for r in load(original, "05_benchmark").engines}
    bb = {r.engine: r for r in load(reproduced, "05_benchmark").engines}
    for name in sorted(set(ba) | set(bb)):
        a, b = (r.capacity.qps if (r := ba.get(name)) and r.capacity else None,
                r.capacity.qps if (r := bb.get(name)) and r.capacity else None)
        checks.append(Check(f"benchmark {name} Server peak QPS", a, b, "timing", rel_close(a, b, timing_tolerance)))
    return checks


def reproduce_run(run_dir: str | Path, outputs: str | Path | None = None, timing_tolerance: float = 0.5,
                  overrides: dict[str, Any] | None = None, progress: bool = False) -> tuple[Path, list[Check]]:
    """Run the recorded parameters again into a new run folder and compare it with the original."""
    from .pipeline import run_chain

    run = Path(run_dir).resolve()
    # a reproduction is compared, never deployed: the original's deploy_repo would pin it in a live repository
    params = Params.from_yaml(run / "params.yaml", {"deploy_repo": "", **(overrides or {})})
    run_id = f"{run.name}-repro-{secrets.token_hex(2)}"
    outcome = run_chain(params, run_id=run_id, outputs=outputs or run.parent, progress=progress)
    if not outcome.ok:
        raise ArtifactError(f"the reproduction failed: {outcome.error} (log: {outcome.run_dir})")
    return outcome.run_dir, compare_runs(run, outcome.run_dir, timing_tolerance)
