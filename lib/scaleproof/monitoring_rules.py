"""What a priced run expects of its deployed models, as Prometheus recording and alerting rules.

For every model a run deployed (its pinned version), the thresholds come from the run's own files:

| alert | fires when | threshold from |
|---|---|---|
| ScaleproofModelNotReady | Triton exports no series of the pinned version (the engine did not load) | deploy.json's pin |
| ScaleproofP99AboveSLA | P99 (Triton's summary, worst pod) above the SLA the run priced at | cost_report.json assumptions.sla_p99_ms |
| ScaleproofBatchBelowCapacity | mean batch below the confirmed run's, with traffic at half the capacity bought or more | benchmark.json confirmation run's batch sizes |
| ScaleproofQueueAboveShare | mean queue time above the batcher's queue window (its share of the bound) | benchmark.json server.batcher.max_queue_delay_ms |
| ScaleproofTrafficAboveCapacity | traffic above instances x per-instance QPS the cost model bought | cost_report.json engines[i].instances, instance_qps |

Recording rules (`scaleproof:*`) compute QPS, mean batch, mean queue time and P99 per model and version from
Triton's metrics; `scaleproof_model_info` (model, version, engine, precision, GPU type, run id) exists only
while Triton serves that version. Written as a plain rule file (promtool, a Prometheus `rule_files` entry)
and as a Prometheus Operator PrometheusRule with a PodMonitor for Triton's metrics port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import paths
from .errors import ParamsError
from .provenance import read_json

FOR = "5m"  # how long a condition must hold before its alert fires
RATE_WINDOW = "5m"
BUSY_SHARE = 0.5  # the batch-size alert waits for traffic of at least this share of the capacity bought


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def expectations(run: Path, repo: Path) -> list[dict[str, Any]]:
    """Per deployed model of `run` at its pinned version: the thresholds and the file and key each comes from."""
    from .triton_repo import read_deploys

    run = run.resolve()
    doc = read_deploys(repo)
    bench = read_json(paths.result_path(run, "05_benchmark"))
    cost = read_json(paths.result_path(run, "06_cost_report"))
    bench_file = paths.result_path(run, "05_benchmark").relative_to(run).as_posix()
    cost_file = paths.result_path(run, "06_cost_report").relative_to(run).as_posix()
    gpu = (bench.get("hardware") or {}).get("gpu")
    out = []
    for d in doc["deploys"]:
        if Path(d["run"]).resolve() != run or doc["pins"].get(d["model"]) != d["version"]:
            continue
        ci = next((i for i, e in enumerate(cost["engines"]) if e["engine"] == d["engine"]), None)
        bi = next(i for i, e in enumerate(bench["engines"]) if e["engine"] == d["engine"])
        if ci is None:
            continue  # deployed but not priced: no capacity was bought for it
        priced, measured = cost["engines"][ci], bench["engines"][bi]
        confirmed = (measured["server"].get("confirmation") or {}).get("run") or {}
        sizes = {int(k): v for k, v in confirmed.get("batch_sizes", {}).items()}
        out.append({
            "model": d["model"], "version": str(d["version"]), "engine": d["engine"], "run_id": d["run_id"],
            "precision": priced["precision"], "gpu_type": gpu["name"] if gpu else bench["device_slug"],
            "sla_p99_ms": (cost["assumptions"]["sla_p99_ms"], f"{cost_file}: assumptions.sla_p99_ms"),
            "mean_batch": (sum(k * v for k, v in sizes.items()) / sum(sizes.values()) if sizes else None,
                           f"{bench_file}: engines[{bi}].server.confirmation.run.batch_sizes (mean)"),
            "queue_ms": (measured["server"]["batcher"]["max_queue_delay_ms"],
                         f"{bench_file}: engines[{bi}].server.batcher.max_queue_delay_ms"),
            "capacity_qps": (priced["instances"] * priced["instance_qps"],
                             f"{cost_file}: engines[{ci}].instances x engines[{ci}].instance_qps "
                             f"({priced['instances']} x {priced['instance_qps']:g})"),
        })
    if not out:
        raise ParamsError(f"{repo} serves no priced model of {run} at its pinned version: deploy it first")
    return out


def recording_rules() -> list[dict[str, Any]]:
    by = "sum by (model, version)"
    w = RATE_WINDOW
    return [
        {"record": "scaleproof:inference_qps", "expr": f"{by} (rate(nv_inference_count[{w}]))"},
        {"record": "scaleproof:mean_batch_size",
         "expr": f"{by} (rate(nv_inference_count[{w}])) / {by} (rate(nv_inference_exec_count[{w}]))"},
        {"record": "scaleproof:queue_ms_mean",
         "expr": f"{by} (rate(nv_inference_queue_duration_us[{w}])) / {by} "
                 f"(rate(nv_inference_request_success[{w}])) / 1000"},
        {"record": "scaleproof:p99_ms",  # Triton's summary quantile is per pod: the worst pod is the SLA's
         "expr": 'max by (model, version) (nv_inference_request_summary_us{quantile="0.99"}) / 1000'},
    ]


def model_rules(e: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The info series and the five alerts of one model."""
    sel = f'model="{e["model"]}"'
    labels = {"severity": "warning", "model": e["model"], "run_id": e["run_id"]}

    def alert(name: str, expr: str, key: str, summary: str) -> dict[str, Any]:
        value, source = e[key] if key else (None, "deploy.json: pins")
        return {"alert": name, "expr": expr, "for": FOR, "labels": {**labels, "version": e["version"]},
                "annotations": {"summary": summary, "threshold": "" if value is None else _fmt(value),
                                "threshold_source": f"{source} of run {e['run_id']}"}}

    info = [{"record": "scaleproof_model_info",
             "expr": f'max by (model, version) (nv_inference_count{{{sel}, version="{e["version"]}"}}) * 0 + 1',
             "labels": {"engine": e["engine"], "precision": e["precision"], "gpu_type": e["gpu_type"],
                        "run_id": e["run_id"]}}]
    alerts = [
        alert("ScaleproofModelNotReady", f'absent(nv_inference_count{{{sel}, version="{e["version"]}"}})', "",
              f"{e['model']} version {e['version']} is not served: Triton exports no series for it (engine not "
              "loaded, or no pod scraped)"),
        alert("ScaleproofP99AboveSLA", f"scaleproof:p99_ms{{{sel}}} > {_fmt(e['sla_p99_ms'][0])}", "sla_p99_ms",
              f"{e['model']}: P99 {{{{ $value | printf \"%.1f\" }}}} ms, above the {_fmt(e['sla_p99_ms'][0])} ms "
              "SLA the run priced at"),
        alert("ScaleproofQueueAboveShare", f"scaleproof:queue_ms_mean{{{sel}}} > {_fmt(e['queue_ms'][0])}",
              "queue_ms", f"{e['model']}: requests wait {{{{ $value | printf \"%.2f\" }}}} ms in the queue, more "
                          f"than the batcher's {_fmt(e['queue_ms'][0])} ms window"),
        alert("ScaleproofTrafficAboveCapacity",
              f"sum by (model) (scaleproof:inference_qps{{{sel}}}) > {_fmt(e['capacity_qps'][0])}", "capacity_qps",
              f"{e['model']}: {{{{ $value | printf \"%.0f\" }}}} QPS, above the {_fmt(e['capacity_qps'][0])} QPS "
              "the cost model bought"),
    ]
    if e["mean_batch"][0] is not None:
        busy = BUSY_SHARE * e["capacity_qps"][0]
        alerts.insert(2, alert(
            "ScaleproofBatchBelowCapacity",
            f"scaleproof:mean_batch_size{{{sel}}} < {_fmt(e['mean_batch'][0])} and on (model) "
            f"sum by (model) (scaleproof:inference_qps{{{sel}}}) > {_fmt(busy)}", "mean_batch",
            f"{e['model']}: mean batch {{{{ $value | printf \"%.1f\" }}}} at over {BUSY_SHARE:.0%} of the capacity "
            f"bought; the capacity assumed {_fmt(e['mean_batch'][0])}"))
    return info, alerts


def rule_groups(run: Path, repo: Path, slug: str) -> list[dict[str, Any]]:
    exp = expectations(run, repo)
    info, alerts = [], []
    for e in exp:
        i, a = model_rules(e)
        info += i
        alerts += a
    return [{"name": f"scaleproof-{slug}-recording", "rules": recording_rules() + info},
            {"name": f"scaleproof-{slug}-alerts", "rules": alerts}]


def operator_objects(name: str, labels: dict[str, str], groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A PodMonitor for Triton's metrics port of the Deployment's pods and the rules as a PrometheusRule."""
    meta = {"name": name, "labels": dict(labels)}
    pod_monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta,
                   "spec": {"selector": {"matchLabels": {"app.kubernetes.io/instance": labels["app.kubernetes.io/instance"]}},
                            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}]}}
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": dict(meta),
            "spec": {"groups": groups}}
    return [pod_monitor, rule]
