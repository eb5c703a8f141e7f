"""A Grafana dashboard for the models a run deployed: QPS, P99 against the bound, batch sizes, what runs where.

Panels read the recording rules of `monitoring_rules` and Triton's own metrics; the batch-size distribution
reads `scaleproof_batch_executions_total`, which `scaleproof watch URL --listen PORT` exports from Triton's
statistics (and the in-process batcher's exporter for a run's own load test). The data source is a variable
(`${datasource}`), chosen when the dashboard is imported.
"""

from __future__ import annotations

from typing import Any

from .serving_metrics import BATCH_SERIES

DS = {"type": "prometheus", "uid": "${datasource}"}


def _panel(pid: int, title: str, kind: str, targets: list[tuple[str, str]], x: int, y: int, w: int = 12,
           unit: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "title": title, "type": kind, "datasource": DS,
            "gridPos": {"x": x, "y": y, "w": w, "h": 8},
            "fieldConfig": {"defaults": {**({"unit": unit} if unit else {})}, "overrides": []},
            "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DS}
                        for i, (expr, legend) in enumerate(targets)], **extra}


def dashboard(title: str, expectations: list[dict[str, Any]]) -> dict[str, Any]:
    """The dashboard JSON; `expectations` (monitoring_rules.expectations) give each model's bound and capacity."""
    models = "|".join(e["model"] for e in expectations)
    sel = f'model=~"{models}"'
    bounds = [(f'vector({e["sla_p99_ms"][0]:g})', f'{e["model"]} SLA (run {e["run_id"]})') for e in expectations]
    capacity = [(f'vector({e["capacity_qps"][0]:g})', f'{e["model"]} capacity bought') for e in expectations]
    panels = [
        _panel(1, "Requests per second", "timeseries",
               [(f"scaleproof:inference_qps{{{sel}}}", "{{model}} v{{version}}"), *capacity], 0, 0, unit="reqps"),
        _panel(2, "P99 latency vs the SLA bound", "timeseries",
               [(f"scaleproof:p99_ms{{{sel}}}", "{{model}} v{{version}} P99"), *bounds], 12, 0, unit="ms"),
        _panel(3, "Batch-size distribution (batches per second, by size)", "bargauge",
               [(f"sum by (batch_size) (rate({BATCH_SERIES}{{{sel}}}[5m]))", "{{batch_size}}")], 0, 8,
               options={"orientation": "vertical", "displayMode": "basic"}),
        _panel(4, "Mean batch size and queue time", "timeseries",
               [(f"scaleproof:mean_batch_size{{{sel}}}", "{{model}} mean batch"),
                (f"scaleproof:queue_ms_mean{{{sel}}}", "{{model}} queue ms")], 12, 8),
        _panel(5, "What runs where: model, version, precision, GPU type, run", "table",
               [(f"scaleproof_model_info{{{sel}}}", "")], 0, 16,
               options={"showHeader": True}, transformations=[{"id": "labelsToFields", "options": {}}]),
        _panel(6, "GPU utilization (Triton's GPU metrics)", "timeseries",
               [("avg by (gpu_uuid) (nv_gpu_utilization)", "{{gpu_uuid}}"),
                ("avg by (gpu_uuid) (nv_gpu_memory_used_bytes / nv_gpu_memory_total_bytes)", "{{gpu_uuid}} memory")],
               12, 16, unit="percentunit"),
    ]
    return {"title": title, "uid": title.lower().replace(" ", "-")[:40], "schemaVersion": 39, "version": 1,
            "tags": ["scaleproof", "triton"], "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
            "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                     "label": "Prometheus"}]},
            "panels": panels}


def queries(doc: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard (what a check parses)."""
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
