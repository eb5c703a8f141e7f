"""The priced runs a prospectus is built on: a run folder (published, `cost_report/cost_report.json`, or stored
flat, `cost_report.json`) read for each engine's confirmed capacity, its range, its memory and the price row
the run was priced at; or capacities the user states (a worked example, a run made elsewhere)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ParamsError


@dataclass(frozen=True)
class ServedEngine:
    engine: str
    qps: float  # confirmed capacity per accelerator (inferences/s)
    qps_range: tuple[float, float]  # per accelerator: low and high end of the measured range
    instance_qps: float  # per priced instance (accelerators x scaling factor)
    instance_qps_range: tuple[float, float]
    memory_gb: float | None  # the engine's memory as the benchmark measured it (accelerator memory on a GPU)
    p99_ms: float | None
    source: str  # file and key the capacity is read from

    def capacity(self, end: str) -> float:
        """Instance capacity at the `low`, `base` (confirmed) or `high` end of the measured range."""
        return {"low": self.instance_qps_range[0], "base": self.instance_qps, "high": self.instance_qps_range[1]}[end]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServedRun:
    path: str  # the run folder as given
    run_id: str
    model: str
    device: str  # the measured hardware in words
    measured: str  # when the run was made
    accelerators_per_instance: int
    price_id: str  # the price row the run was priced at
    before: ServedEngine
    after: ServedEngine
    cost_file: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "before": self.before.to_dict(), "after": self.after.to_dict()}


def cost_file_of(run: Path) -> Path:
    for candidate in (run / "cost_report" / "cost_report.json", run / "cost_report.json"):
        if candidate.is_file():
            return candidate
    raise ParamsError(f"{run}: no cost_report/cost_report.json or cost_report.json: give a run folder that was "
                      "priced (scaleproof run publishes one under outputs/<run_id>/)")


def engine_of(cost: dict[str, Any], name: str, cost_file: str) -> ServedEngine:
    engines = cost.get("engines") or []
    i = next((i for i, e in enumerate(engines) if e["engine"] == name), None)
    if i is None:
        raise ParamsError(f"{cost_file}: no priced engine {name!r}; it priced {[e['engine'] for e in engines]}")
    e = engines[i]
    scale = e.get("instance_qps", e["qps"]) / e["qps"]
    lo, hi = (e.get("range") or {}).get("qps") or [e.get("instance_qps", e["qps"])] * 2
    mem = e.get("memory_mb")
    return ServedEngine(engine=name, qps=e["qps"], qps_range=(lo / scale, hi / scale), instance_qps=e["qps"] * scale,
                        instance_qps_range=(lo, hi), memory_gb=mem / 1000 if mem else None, p99_ms=e.get("p99_ms"),
                        source=f"{cost_file} engines[{i}].qps")


def read_run(path: str, before: str = "", after: str = "", root: Path | None = None) -> ServedRun:
    """A priced run folder (`path`, relative to `root` when not absolute): `before` defaults to the run's
    baseline engine, `after` to its best. Files are named as `path` gives them."""
    run = Path(path) if root is None or Path(path).is_absolute() else Path(root) / path
    if not run.is_dir():
        raise ParamsError(f"run folder {path!r} does not exist")
    cost_path = cost_file_of(run)
    cost = json.loads(cost_path.read_text())
    if not cost.get("engines"):
        raise ParamsError(f"{cost_path}: the run priced no engine, so there is nothing to put in a prospectus")
    before = before or cost.get("baseline") or ""
    after = after or cost.get("best") or ""
    if not before or not after:
        raise ParamsError(f"{cost_path}: the run names no baseline/best engine; set before/after for this model")
    manifest = json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").is_file() else {}
    env = manifest.get("environment") or {}
    gpu, cpu = env.get("gpu") or {}, env.get("cpu") or {}
    device = (f"{gpu['count']} x {gpu['name']}" if gpu.get("count", 1) > 1 else gpu["name"]) if gpu.get("name") else \
        (f"{cpu.get('model', 'CPU')} ({cpu.get('usable_cores', '?')} cores, {', '.join(cpu.get('isa') or [])})"
         if cpu else "hardware not recorded")
    params = manifest.get("params") or {}
    scaling = (cost.get("assumptions") or {}).get("scaling") or {}
    rel = str(Path(path) / cost_path.relative_to(run))
    return ServedRun(path=path, run_id=manifest.get("run_id", run.name), model=str(params.get("model", "?")),
                     device=device, measured=str(manifest.get("created", "?")),
                     accelerators_per_instance=int(scaling.get("accelerators_per_instance", 1)),
                     price_id=cost["price"]["id"], before=engine_of(cost, before, rel), after=engine_of(cost, after, rel),
                     cost_file=rel)


def stated_run(name: str, before_qps: float, after_qps: float, accelerator: str, price_id: str,
               before_memory_gb: float | None = None, after_memory_gb: float | None = None) -> ServedRun:
    """Capacities the user states (per accelerator, one accelerator per instance): labelled as such."""
    def eng(label: str, qps: float, mem: float | None) -> ServedEngine:
        if qps <= 0:
            raise ParamsError(f"model {name!r}: {label}_qps must be positive")
        return ServedEngine(engine=label, qps=qps, qps_range=(qps, qps), instance_qps=qps, instance_qps_range=(qps, qps),
                            memory_gb=mem, p99_ms=None, source=f"params: models[{name}].capacity.{label}_qps (stated, "
                            "not measured here)")
    return ServedRun(path="", run_id="stated", model=name, device=accelerator, measured="stated in the params",
                     accelerators_per_instance=1, price_id=price_id, before=eng("before", before_qps, before_memory_gb),
                     after=eng("after", after_qps, after_memory_gb), cost_file="params")
