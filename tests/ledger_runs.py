"""Run folders for the ledger's tests: copies of a stored run with planted differences, the manifest re-hashed
as the run itself would have written it (a different run, not a tampered one)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests import ROOT

STORED = ROOT / "benchmarks" / "results"
CPU_A = STORED / "fleet-example" / "runs" / "CPU-A"  # exploratory CPU run: two engines, one with a capacity range
# priced CPU run (a flattened copy: the stage results in its top folder), AMD EPYC, its engines with capacity ranges
CPU_PRICED = STORED / "cpu-transformer-2026-11-25"


def stage_file(run: Path, rel: str) -> Path:
    """Where a run folder holds a stage result: under its stage folder, or in a flattened copy's top folder."""
    return run / rel if (run / rel).is_file() else run / Path(rel).name


def scale_costs(engine: dict[str, Any], f: float) -> None:
    """Capacity times f, so every cost per inference over f, in one priced engine of cost_report.json."""
    engine["qps"] *= f
    engine["instance_qps"] *= f
    engine["usd_per_1m"] /= f
    rng = engine.get("range")
    if rng:
        rng["qps"] = [q * f for q in rng["qps"]]
        if rng.get("accelerator_qps"):
            rng["accelerator_qps"] = [q * f for q in rng["accelerator_qps"]]
        rng["usd_per_1m"] = [u / f for u in rng["usd_per_1m"]]


def planted_run(dst: Path, run_id: str, qps_factor: float = 1.0, params: dict[str, Any] | None = None,
                environment: dict[str, dict[str, Any]] | None = None, src: Path = CPU_A) -> Path:
    """A copy of `src` as run `run_id`, its capacities times `qps_factor`, with other parameters and environment
    entries, and a manifest whose hashes match the new files."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["run_id"] = run_id
    manifest["params"].update(params or {})
    for section, values in (environment or {}).items():
        manifest["environment"].setdefault(section, {}).update(values)
    (dst / "params.yaml").write_text(yaml.safe_dump(manifest["params"], sort_keys=False))
    cost_file = stage_file(dst, "cost_report/cost_report.json")
    bench_file = stage_file(dst, "benchmark/benchmark.json")
    cost, bench = json.loads(cost_file.read_text()), json.loads(bench_file.read_text())
    for e in cost["engines"]:
        scale_costs(e, qps_factor)
    for e in bench["engines"]:
        if e.get("capacity"):
            e["capacity"]["qps"] *= qps_factor
            if e["capacity"].get("qps_upper"):
                e["capacity"]["qps_upper"] *= qps_factor
    for c in cost["claims"]:
        if c["key"].endswith("capacity.qps"):
            c["value"] *= qps_factor
    cost_file.write_text(json.dumps(cost, indent=1))
    bench_file.write_text(json.dumps(bench, indent=1))
    rewritten = {"cost_report/cost_report.json": cost_file, "benchmark/benchmark.json": bench_file,
                 "params.yaml": dst / "params.yaml"}
    for rel in manifest["artifacts"]:
        f = dst / rel if (dst / rel).is_file() else rewritten.get(rel)
        if f is not None and f.is_file():
            manifest["artifacts"][rel]["sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dst
