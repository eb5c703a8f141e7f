"""Kubernetes objects that serve a Triton model repository on the GPU type a run measured.

One Deployment and one Service per GPU type: pods land on nodes whose `nvidia.com/gpu.product` label
(set by NVIDIA's GPU Feature Discovery, e.g. `NVIDIA-H100-80GB-HBM3`) names the measured GPU, ask for
`nvidia.com/gpu: 1`, are ready when Triton's `/v2/health/ready` answers, and their number is the
instance count the run's cost model computed for the profile's load. A CPU run gets no GPU selector or
resource. The model repository is mounted from a PersistentVolumeClaim the platform provides.

Beside them, in `monitoring/` (so `kubectl apply -f k8s/` needs no Prometheus Operator), what to watch
(`monitoring_rules`, `grafana_dashboard`): `<slug>.rules.yml` (Prometheus rules whose thresholds come from
the run's files), `<slug>-prometheus-operator.yaml` (a PodMonitor for Triton's metrics port and the same rules
as a PrometheusRule) and `<slug>-dashboard.json` (Grafana).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml

from . import stages
from .errors import ParamsError
from .results import BenchmarkResult, CostReport

logger = logging.getLogger(__name__)

TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:25.10-py3"  # pick the release whose ORT/TensorRT match the run's
PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}


def gpu_product_label(gpu_name: str) -> str:
    """GPU Feature Discovery's `nvidia.com/gpu.product` value for a GPU name: spaces become '-'."""
    return re.sub(r"\s+", "-", gpu_name.strip())


def manifests(run_dir: Path, claim: str, image: str = TRITON_IMAGE, engine: str | None = None,
              models: list[str] | None = None) -> list[dict[str, Any]]:
    """Deployment and Service for the run's GPU type; replicas from its cost report (the best engine's
    instance count, or `engine`'s). Triton loads exactly `models` (explicit model control): the repository
    also holds deploy.json, k8s/, served/ and notebooks/, which Triton 2.51 refuses to start beside in its
    default mode ("Poll failed for model directory 'k8s'", checked with the tritonserver binary here)."""
    bench: BenchmarkResult = stages.read_typed(run_dir, "05_benchmark")
    cost: CostReport = stages.read_typed(run_dir, "06_cost_report")
    rows = {e.engine: e for e in cost.engines}
    chosen = rows.get(engine) if engine else min(rows.values(), key=lambda e: e.annual_usd, default=None)
    if chosen is None:
        raise ParamsError(f"no priced engine {engine!r} in {run_dir}'s cost report" if engine else
                         f"{run_dir}'s cost report priced no engine")
    slug = bench.device_slug
    name = re.sub(r"[^a-z0-9-]+", "-", f"triton-{slug}".lower()).strip("-")[:63]
    gpu = (bench.hardware or {}).get("gpu")
    labels = {"app.kubernetes.io/name": "triton", "app.kubernetes.io/instance": name,
              "scaleproof/run": re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(run_dir).name)[:63]}
    container: dict[str, Any] = {
        "name": "triton", "image": image,
        # summary latencies: P99 as a metric, which the P99 alert and the dashboard read
        "args": ["tritonserver", "--model-repository=/models", "--model-control-mode=explicit",
                 "--metrics-config=summary_latencies=true",
                 *(f"--load-model={m}" for m in models or [])],
        "ports": [{"name": k, "containerPort": v} for k, v in PORTS.items()],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 10},
        "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
    }
    pod: dict[str, Any] = {"containers": [container],
                           "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": claim}}]}
    if gpu:
        container["resources"] = {"limits": {"nvidia.com/gpu": 1}}
        pod["nodeSelector"] = {"nvidia.com/gpu.product": gpu_product_label(gpu["name"])}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"replicas": chosen.instances, "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}}
    service = {  # plain copies of the labels: YAML anchors would make the file harder to read and edit
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"selector": {"app.kubernetes.io/instance": name},
                 "ports": [{"name": k, "port": v, "targetPort": k} for k, v in PORTS.items()]}}
    return [deployment, service]


def write(run_dir: Path, out: Path, claim: str, image: str = TRITON_IMAGE, models: list[str] | None = None) -> Path:
    """`<out>/<device slug>.yaml` with both objects; returns its path."""
    objs = manifests(run_dir, claim, image, models=models)
    path = out / f"{stages.read_typed(run_dir, '05_benchmark').device_slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return path


def write_monitoring(run_dir: Path, repo: Path, out: Path) -> list[Path]:
    """The rule file, the Prometheus Operator objects and the dashboard for the run's deployed models."""
    from . import grafana_dashboard, monitoring_rules

    deployment = manifests(run_dir, "unused")[0]
    slug = stages.read_typed(run_dir, "05_benchmark").device_slug
    groups = monitoring_rules.rule_groups(run_dir, repo, slug)
    out.mkdir(parents=True, exist_ok=True)
    rules = out / f"{slug}.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    operator = out / f"{slug}-prometheus-operator.yaml"
    operator.write_text(yaml.safe_dump_all(monitoring_rules.operator_objects(
        deployment["metadata"]["name"], deployment["metadata"]["labels"], groups), sort_keys=False))
    board = out / f"{slug}-dashboard.json"
    board.write_text(json.dumps(grafana_dashboard.dashboard(
        f"scaleproof {slug}", monitoring_rules.expectations(run_dir, repo)), indent=1) + "\n")
    return [rules, operator, board]


def deploy_with_manifests(run_dir: str | Path, repo: str | Path, claim: str = "triton-models",
                          image: str | None = None, log=logger.info) -> tuple[dict[str, Any], Path]:
    """`triton_repo.deploy` and the Kubernetes objects for the run's GPU type, traced in deploy.json: what
    `scaleproof deploy` and the 08_deploy notebook both do. Returns deploy.json and the manifests' path."""
    from . import triton_repo

    run, repo = Path(run_dir).resolve(), Path(repo).resolve()
    doc = triton_repo.deploy(run, repo, log=log)
    mine = sorted({d["model"] for d in doc["deploys"] if Path(d["run"]) == run})  # this run's models, pinned now
    path = write(run, repo / "k8s", claim, image or TRITON_IMAGE, models=mine)
    for f in [path, *write_monitoring(run, repo, repo / "k8s" / "monitoring")]:
        triton_repo.record_file(repo, f)
    return triton_repo.read_deploys(repo), path

