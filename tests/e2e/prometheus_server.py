"""A real Prometheus server (Debian's `prometheus` package) on loopback with a configuration of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from scaleproof.served import free_port


def binary_or_skip(name: str = "prometheus") -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"Debian's {name} is not installed (make test installs the prometheus package)")
    return path


class Prometheus:
    """`prometheus` scraping `targets` (job -> host:port) every second, its data in `folder`; stopped on exit."""

    def __init__(self, folder: Path, targets: dict[str, str] | None = None) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                                     for job, target in (targets or {}).items()]}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.cmd = [binary_or_skip(), f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Prometheus:
        self.log = open(self.folder / "prometheus.log", "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / "prometheus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise AssertionError("prometheus was not ready in 60 s")

    def api(self, path: str, **params: str) -> dict:
        """GET /api/v1/<path>; an error answer (HTTP 400: a query that does not parse) comes back as its JSON."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def query(self, expr: str) -> list[dict]:
        doc = self.api("query", query=expr)
        assert doc["status"] == "success", (expr, doc)
        return doc["data"]["result"]

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
