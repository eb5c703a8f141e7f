"""The priced runs a prospectus is built on: a run folder (published, `cost_report/cost_report.json`, or stored
flat, `cost_report.json`) read for each engine's confirmed capacity, its range, its memory, its anomaly flags and
the price row the run was priced at; or capacities the user states (a worked example, a run made elsewhere).

A run folder is priced only as it was written: it passes the ledger's copy check (every file it holds has the
manifest's sha256), its manifest says `succeeded` and its cost report is not exploratory. An engine flagged
`repeats_disagree` or `server_below_offline` (its confirmed capacity is in doubt) is refused unless the params
accept those flags by name. The high end of the range is the highest VALID peak measured, never the lowest
INVALID target above it: a rate no run reached is not priced."""

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
    flags: tuple[dict[str, str], ...] = ()  # the benchmark's anomaly flags: {"rule", "detail"}
    accepted_flags: tuple[str, ...] = ()  # refusing flags the params accepted (shown beside the figure)
    high_source: str = ""  # what the high end of the range is

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


# flags that put the confirmed capacity itself in doubt: refused unless the params accept them by name
REFUSING_FLAGS = ("repeats_disagree", "server_below_offline")


def engine_of(cost: dict[str, Any], name: str, cost_file: str, bench: dict[str, Any] | None = None,
              bench_file: str = "", accept: tuple[str, ...] = ()) -> ServedEngine:
    engines = cost.get("engines") or []
    i = next((i for i, e in enumerate(engines) if e["engine"] == name), None)
    if i is None:
        raise ParamsError(f"{cost_file}: no priced engine {name!r}; it priced {[e['engine'] for e in engines]}")
    e = engines[i]
    b = next((x for x in (bench or {}).get("engines") or [] if x.get("engine") == name), {})
    flags = tuple({"rule": str(f.get("rule")), "detail": str(f.get("detail", ""))}
                  for f in (e.get("flags") if e.get("flags") is not None else b.get("flags")) or [])
    doubt = sorted({f["rule"] for f in flags} & set(REFUSING_FLAGS))
    if set(doubt) - set(accept):
        said = "; ".join(f"{f['rule']}: {f['detail']}" for f in flags if f["rule"] in doubt)
        raise ParamsError(f"{cost_file}: engine {name!r} is flagged {', '.join(doubt)} ({said}), so its confirmed "
                          f"capacity is in doubt; measure it again, or accept it knowingly with "
                          f"accept_flags: [{', '.join(doubt)}] on this model (the prospectus then says so)")
    scale = e.get("instance_qps", e["qps"]) / e["qps"]
    lo, hi = (e.get("range") or {}).get("qps") or [e.get("instance_qps", e["qps"])] * 2
    # the high end: the highest VALID peak a search reached (per accelerator), never an INVALID target above it
    peaks = [float(p) for p in ((b.get("capacity") or {}).get("peaks") or [])]
    top = max(peaks) if peaks else e["qps"]
    high_source = (f"{bench_file} capacity.peaks: highest VALID peak {top:,.0f}/s" if peaks else
                   f"{cost_file} engines[{i}].qps: no repeat peak recorded, so the confirmed rate")
    if top * scale < hi:
        high_source += f" (the range's top, {hi / scale:,.0f}/s, is not a VALID rate: not priced)"
    hi = max(min(hi, top * scale), e["qps"] * scale)
    mem = e.get("memory_mb")
    return ServedEngine(engine=name, qps=e["qps"], qps_range=(lo / scale, hi / scale), instance_qps=e["qps"] * scale,
                        instance_qps_range=(lo, hi), memory_gb=mem / 1000 if mem else None, p99_ms=e.get("p99_ms"),
                        source=f"{cost_file} engines[{i}].qps", flags=flags,
                        accepted_flags=tuple(d for d in doubt if d in accept), high_source=high_source)


def checked_run(run: Path, path: str) -> tuple[dict[str, Any], dict[str, Path]]:
    """The manifest and where each listed file is, for a run that passes the ledger's copy check, succeeded and
    was not exploratory; anything else is refused with what is wrong."""
    from ..ledger.copies import check_run
    from ..ledger.records import status_of

    checked = check_run(run)
    if checked.problems:
        raise ParamsError(f"run {path!r} is not as it was written, so it is not priced: " + "; ".join(checked.problems)
                          + " (price the run as its manifest lists it, or make the run again)")
    manifest = checked.manifest
    if manifest.get("status") != "succeeded":
        raise ParamsError(f"run {path!r}: its status is {manifest.get('status')!r} "
                          f"({manifest.get('error') or 'no error recorded'}); only a run that succeeded is priced")
    if "cost_report/cost_report.json" not in checked.located:
        raise ParamsError(f"{run}: no cost_report/cost_report.json or cost_report.json: give a run folder that was "
                          "priced (scaleproof run publishes one under outputs/<run_id>/)")
    cost = json.loads(checked.located["cost_report/cost_report.json"].read_text(encoding="utf-8"))
    status, reason = status_of(manifest, cost)
    if status == "exploratory":
        raise ParamsError(f"run {path!r}: its cost report is exploratory ({reason or 'exploratory: true'}), a figure "
                          "that was never meant to be priced; price a run of a full profile")
    return manifest, checked.located


def read_run(path: str, before: str = "", after: str = "", root: Path | None = None,
             accept_flags: tuple[str, ...] = ()) -> ServedRun:
    """A priced run folder (`path`, relative to `root` when not absolute): `before` defaults to the run's
    baseline engine, `after` to its best. Files are named as `path` gives them."""
    run = Path(path) if root is None or Path(path).is_absolute() else Path(root) / path
    if not run.is_dir():
        raise ParamsError(f"run folder {path!r} does not exist")
    cost_file_of(run)
    manifest, located = checked_run(run, path)
    cost_path = located["cost_report/cost_report.json"]
    cost = json.loads(cost_path.read_text())
    bench_path = located.get("benchmark/benchmark.json")
    bench = json.loads(bench_path.read_text()) if bench_path else {}
    bench_rel = str(Path(path) / bench_path.relative_to(run)) if bench_path else ""
    if not cost.get("engines"):
        raise ParamsError(f"{cost_path}: the run priced no engine, so there is nothing to put in a prospectus")
    before = before or cost.get("baseline") or ""
    after = after or cost.get("best") or ""
    if not before or not after:
        raise ParamsError(f"{cost_path}: the run names no baseline/best engine; set before/after for this model")
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
                     price_id=cost["price"]["id"], cost_file=rel,
                     before=engine_of(cost, before, rel, bench, bench_rel, accept_flags),
                     after=engine_of(cost, after, rel, bench, bench_rel, accept_flags))


def stated_run(name: str, before_qps: float, after_qps: float, accelerator: str, price_id: str,
               before_memory_gb: float | None = None, after_memory_gb: float | None = None) -> ServedRun:
    """Capacities the user states (per accelerator, one accelerator per instance): labelled as such."""
    def eng(label: str, qps: float, mem: float | None) -> ServedEngine:
        if qps <= 0:
            raise ParamsError(f"model {name!r}: {label}_qps must be positive")
        return ServedEngine(engine=label, qps=qps, qps_range=(qps, qps), instance_qps=qps, instance_qps_range=(qps, qps),
                            memory_gb=mem, p99_ms=None, source=f"params: models[{name}].capacity.{label}_qps (stated, "
                            "not measured here)", high_source="stated: no range")
    return ServedRun(path="", run_id="stated", model=name, device=accelerator, measured="stated in the params",
                     accelerators_per_instance=1, price_id=price_id, before=eng("before", before_qps, before_memory_gb),
                     after=eng("after", after_qps, after_memory_gb), cost_file="params")
