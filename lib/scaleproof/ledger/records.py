"""A run folder as ledger rows: one for the run (model, device type, commit, date, profile, status) and one per
priced engine (confirmed capacity with its range, P99, accuracy, memory, cost per 1M, instances). Read from the
manifest and the stage results as written, so runs of older result formats are indexed too."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..provenance import sha256_file
from .copies import Checked

PROFILE = re.compile(r"--params\s+(\S+)")


@dataclass
class EngineRow:
    engine: str
    backend: str
    precision: str
    baseline: bool
    headline: bool
    qps: float
    qps_low: float
    qps_high: float
    qps_range_source: str | None
    p99_ms: float
    accuracy: str | None
    accuracy_rank: str | None  # JSON of metrics.accuracy_rank where validate.json has the engine
    memory_mb: float | None
    usd_per_1m: float
    usd_per_1m_low: float
    usd_per_1m_high: float
    fleet_usd_per_1m: float | None
    instances: int
    instance_qps: float | None
    annual_usd: float


@dataclass
class RunRow:
    run_id: str
    folder: str
    manifest_sha256: str
    model: str
    model_version: str
    weights: str | None
    weights_sha256: str | None
    device_type: str
    device_count: int
    cpu: str | None
    commit: str | None
    dirty: bool | None
    created: str
    profile: str | None
    status: str  # priced, exploratory or failed
    status_reason: str | None
    headline_engine: str | None
    tie: str | None
    sla_p99_ms: float | None
    price_id: str | None
    price_accelerator: str | None
    usd_per_hour: float | None
    accelerators_per_instance: int | None
    checked: str  # complete or copy
    absent: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    engines: list[EngineRow] = field(default_factory=list)


def device_of(env: dict[str, Any]) -> tuple[str, int]:
    """The device type the run measured (the GPU's name, else the CPU model) and how many of it."""
    gpu = env.get("gpu") or {}
    if gpu.get("name"):
        return gpu["name"], int(gpu.get("count") or 1)
    return ((env.get("cpu") or {}).get("model") or "unknown CPU"), 1


def measured_device(manifest: dict[str, Any], bench: dict[str, Any], cost: dict[str, Any] | None) -> tuple[str, int]:
    """The device type and count from the hash-checked results (benchmark.json's hardware, else the cost report's
    measured_hardware); the manifest's environment only for a run that has neither (a failed run). A manifest
    that names another device than the results is refused (ValueError): the run would be filed under the wrong
    device type."""
    said = device_of(manifest.get("environment") or {})
    hardware = bench.get("hardware") or (cost or {}).get("measured_hardware")
    if not hardware:
        return said
    measured = device_of(hardware)
    if measured != said:
        raise ValueError(f"the manifest says {said[1]} x {said[0]} but the results it lists (benchmark.json's "
                         f"hardware) measured {measured[1]} x {measured[0]}: the manifest was edited after the run; "
                         "add the run folder as the run wrote it")
    return measured


def status_of(manifest: dict[str, Any], cost: dict[str, Any] | None) -> tuple[str, str | None]:
    if manifest.get("status") != "succeeded":
        return "failed", manifest.get("error") or f"run status {manifest.get('status')!r}"
    said = str((cost or {}).get("status") or "")
    if (cost or {}).get("exploratory") or said.startswith("exploratory"):
        return "exploratory", said
    if not (cost or {}).get("engines"):
        return "failed", said or "no engine could be priced"
    return "priced", None


def engine_rows(cost: dict[str, Any], bench: dict[str, Any], validated: dict[str, Any]) -> list[EngineRow]:
    from ..metrics import accuracy_rank

    caps = {e["engine"]: e.get("capacity") or {} for e in bench.get("engines") or []}
    vals = {e["engine"]: e for e in validated.get("engines") or []}
    rows = []
    for e in cost.get("engines") or []:
        rng = e.get("range") or {}
        cap = caps.get(e["engine"], {})
        top = (rng.get("accelerator_qps") or [None, cap.get("qps_upper")])[1] or e["qps"]
        usd = sorted(rng.get("usd_per_1m") or [e["usd_per_1m"]] * 2)
        v = vals.get(e["engine"])
        rows.append(EngineRow(
            engine=e["engine"], backend=e.get("backend", ""), precision=e.get("precision", ""),
            baseline=bool(e.get("baseline")), headline=e["engine"] == cost.get("best"),
            qps=e["qps"], qps_low=e["qps"], qps_high=max(top, e["qps"]),
            qps_range_source=rng.get("source") or cap.get("range_source"), p99_ms=e["p99_ms"],
            accuracy=e.get("accuracy"), accuracy_rank=json.dumps(accuracy_rank(v)) if v else None,
            memory_mb=e.get("memory_mb"), usd_per_1m=e["usd_per_1m"], usd_per_1m_low=usd[0], usd_per_1m_high=usd[1],
            fleet_usd_per_1m=e.get("fleet_usd_per_1m"), instances=int(e["instances"]),
            instance_qps=e.get("instance_qps"), annual_usd=e["annual_usd"]))
    return rows


def run_row(run: Path, checked: Checked) -> RunRow:
    """The ledger's rows for a run that passed `copies.check_run`."""
    m = checked.manifest
    env, params = m.get("environment") or {}, m.get("params") or {}

    def doc(rel: str) -> dict[str, Any]:
        f = checked.located.get(rel)
        return json.loads(f.read_text(encoding="utf-8")) if f else {}

    cost = doc("cost_report/cost_report.json") if m.get("status") == "succeeded" else None
    status, reason = status_of(m, cost)
    bench = doc("benchmark/benchmark.json")
    device, count = measured_device(m, bench, cost)
    git = env.get("git") or {}
    found = PROFILE.search(m.get("command") or "")
    data = m.get("data") or {}
    price = (cost or {}).get("price") or {}
    assumptions = (cost or {}).get("assumptions") or {}
    engines = engine_rows(cost, bench, doc("validate/validate.json")) if cost else []
    tie = (cost or {}).get("best_tie")
    return RunRow(
        run_id=m["run_id"], folder=str(run.resolve()), manifest_sha256=sha256_file(run / "manifest.json"),
        model=params.get("model", "unknown"), model_version=params.get("model_version") or "",
        weights=data.get("weights") or params.get("weights") or None, weights_sha256=data.get("weights_sha256"),
        device_type=device, device_count=count, cpu=(env.get("cpu") or {}).get("model"),
        commit=git.get("commit"), dirty=git.get("dirty"), created=m.get("created") or "",
        profile=found.group(1) if found else None, status=status, status_reason=reason,
        headline_engine=(cost or {}).get("best"), tie=tie.get("words") if tie else None,
        sla_p99_ms=assumptions.get("sla_p99_ms", params.get("sla_p99_ms")), price_id=price.get("id"),
        price_accelerator=price.get("accelerator"), usd_per_hour=price.get("usd_per_hour"),
        accelerators_per_instance=(assumptions.get("scaling") or {}).get("accelerators_per_instance",
                                                                         params.get("accelerators_per_instance")),
        checked=checked.kind, absent=checked.absent, unlisted=checked.unlisted, params=params, environment=env,
        engines=engines)
