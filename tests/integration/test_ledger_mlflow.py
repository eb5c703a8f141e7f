"""`scaleproof ledger export --mlflow`: the runs logged to a real MLflow tracking server (SQLite backend, loopback)
and read back with MlflowClient; a second export logs nothing new (idempotent by run id)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scaleproof import ledger
from scaleproof.cli import main
from tests.ledger_runs import CPU_A, STORED

pytest.importorskip("mlflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tracking_server(tmp_path):
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker, started in their own group
        proc.wait(timeout=30)
        log.close()


def test_export_logs_each_run_once_with_params_metrics_tags_and_artifacts(tracking_server, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    db = tmp_path / "ledger.sqlite"
    h200 = STORED / "gpu-2026-11-26c" / "x2-priced"  # a copy with report.html and manifest.json
    ledger.add_runs([h200, CPU_A], db)
    assert main(["ledger", "export", "--mlflow", tracking_server, "--ledger", str(db)]) == 0
    assert "2 run(s) logged, 0 already there" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=tracking_server)
    exp = client.get_experiment_by_name("scaleproof")
    runs = {r.data.tags["scaleproof.run_id"]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"x2-priced", "CPU-A"}
    r = runs["x2-priced"]
    assert r.data.tags["device_type"] == "NVIDIA H200" and r.data.tags["device_count"] == "2"
    assert r.data.tags["commit"] == "86d6eed2ae48a69bdbce109e091f1789c1b994a3" and r.data.tags["status"] == "priced"
    assert r.data.params["model"] == "zoo:resnet50" and r.data.params["profile"] == "params/h100.yaml"
    assert r.data.metrics["torch-fp16-compile.qps"] == pytest.approx(21448.5)
    assert r.data.metrics["torch-fp16-compile.usd_per_1m_low"] < r.data.metrics["torch-fp16-compile.usd_per_1m"]
    assert r.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(r.info.run_id)} == {"report.html", "manifest.json"}
    manifest = client.download_artifacts(r.info.run_id, "manifest.json", str(tmp_path))
    assert Path(manifest).read_bytes() == (h200 / "manifest.json").read_bytes()
    assert {a.path for a in client.list_artifacts(runs["CPU-A"].info.run_id)} == {"manifest.json"}  # no report kept
    # again: nothing new, nothing doubled
    out = ledger.export_mlflow(tracking_server, db)
    assert out == {"logged": [], "already": ["CPU-A", "x2-priced"]}
    assert len(client.search_runs([exp.experiment_id])) == 2
