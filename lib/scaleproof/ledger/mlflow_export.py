"""The ledger's runs logged to an MLflow tracking server (the optional `tracking` extra): parameters, metrics per
engine, tags for device type, commit and status, and report.html and manifest.json as artifacts. Idempotent by
run id: a run already logged (tag scaleproof.run_id) is left as it is."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from pathlib import Path
from typing import Any

from ..errors import ParamsError
from .copies import RUN_ID
from .store import DEFAULT_PATH, list_runs

RUN_ID_TAG = "scaleproof.run_id"
METRICS = ("qps", "qps_low", "qps_high", "p99_ms", "memory_mb", "usd_per_1m", "usd_per_1m_low", "usd_per_1m_high",
           "fleet_usd_per_1m", "instances", "annual_usd")
MAX_PARAM = 6000  # MLflow's limit on a parameter's value


def client(uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ParamsError("ledger export --mlflow needs MLflow: pip install 'scaleproof[tracking]'") from None
    return MlflowClient(tracking_uri=uri)


def millis(iso: str) -> int | None:
    try:
        return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return None


def run_id_filter(run_id: str) -> str:
    """The MLflow search filter for runs tagged with `run_id`; an id that is not a plain name (a ledger written
    before ids were checked) is refused rather than spliced into the filter."""
    if not RUN_ID.fullmatch(run_id):
        raise ParamsError(f"run id {run_id!r} is not a plain name (letters, digits, '.', '_', '-'): rebuild the "
                          "ledger with `scaleproof ledger add`, which refuses such ids")
    return f"tags.`{RUN_ID_TAG}` = '{run_id}'"


def export_mlflow(uri: str, ledger: str | Path = DEFAULT_PATH, experiment: str = "scaleproof",
                  **filters: Any) -> dict[str, list[str]]:
    """Log each run of the ledger (matching `filters`, as `list_runs` takes them) not yet in `experiment`."""
    from mlflow.entities import Metric, Param

    mc = client(uri)
    found = mc.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else mc.create_experiment(experiment)
    out: dict[str, list[str]] = {"logged": [], "already": []}
    for r in list_runs(ledger, **filters):
        if mc.search_runs([exp_id], filter_string=run_id_filter(r["run_id"]), max_results=1):
            out["already"].append(r["run_id"])
            continue
        tags = {RUN_ID_TAG: r["run_id"], "device_type": r["device_type"], "device_count": str(r["device_count"]),
                "commit": r["commit"] or "unknown", "status": r["status"], "model": r["model"],
                "model_version": r["model_version"], "checked": r["checked"],
                "manifest_sha256": r["manifest_sha256"], "mlflow.runName": r["run_id"]}
        if r["headline_engine"]:
            tags["headline_engine"] = r["headline_engine"]
        if r["tie"]:
            tags["tie"] = r["tie"][:5000]
        run = mc.create_run(exp_id, start_time=millis(r["created"]), tags=tags)
        rid, when = run.info.run_id, millis(r["created"]) or 0
        params = {k: str(v)[:MAX_PARAM] for k, v in r["params"].items() if k != "run_dir"}
        params.update({"profile": str(r["profile"]), "price_id": str(r["price_id"]),
                       "usd_per_hour": str(r["usd_per_hour"])})
        metrics = [Metric(f"{e['engine']}.{k}", float(e[k]), when, 0)
                   for e in r["engines"] for k in METRICS if e.get(k) is not None]
        items = [Param(k, v) for k, v in sorted(params.items())]
        for i in range(0, max(len(items), len(metrics)), 100):  # log_batch takes at most 100 params a call
            mc.log_batch(rid, metrics=metrics[i:i + 100], params=items[i:i + 100])
        folder = Path(r["folder"])
        for name in ("report.html", "manifest.json"):
            if (folder / name).is_file():
                mc.log_artifact(rid, str(folder / name))
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow writes two links per run; the command says it once
            mc.set_terminated(rid, "FINISHED" if r["status"] != "failed" else "FAILED")
        out["logged"].append(r["run_id"])
    return out
