"""What a running Triton server says about the models it serves: its statistics extension and its Prometheus metrics.

Triton counts, per model version, the requests it answered (`inference_count`), the batches it ran
(`execution_count`), time spent queued and computing, and through the statistics extension
(`GET /v2/models/<name>/stats`) how many batches of each size it executed (`batch_stats`). Its Prometheus
endpoint (port 8002, `/metrics`) carries the same counters as `nv_inference_*` and, with
`--metrics-config=summary_latencies=true`, latency quantiles. Counters only grow: what happened during one
measurement is the difference of two readings (`ModelStats.minus`).

`StatisticsCollector` turns the statistics into Prometheus series (`scaleproof_batch_executions_total` per
batch size), which Triton's own metrics lack, so a Prometheus can chart the real batch-size distribution.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from .errors import ArtifactError

KINDS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")
BATCH_SERIES = "scaleproof_batch_executions_total"  # executions per batch size (the in-process batcher's too)
HTTP_TIMEOUT_S = 10.0


def _url(base: str) -> str:
    return base if base.startswith(("http://", "https://")) else f"http://{base}"


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as r:
            return r.read()
    except (urllib.error.URLError, OSError) as e:
        raise ArtifactError(f"no answer from {url} ({e}): is the Triton server running, and is this its HTTP "
                            "port (8000) or metrics port (8002)?") from None


@dataclass
class ModelStats:
    """One model version's counters, as Triton's statistics extension reports them (or their difference)."""

    model: str
    version: str
    inference_count: int = 0  # requests (samples) answered
    execution_count: int = 0  # batches run
    counts: dict[str, int] = field(default_factory=dict)  # kind -> count
    ns: dict[str, int] = field(default_factory=dict)  # kind -> total nanoseconds
    batches: dict[int, int] = field(default_factory=dict)  # batch size -> batches of that size executed

    @classmethod
    def from_extension(cls, doc: dict[str, Any]) -> ModelStats:
        stats = doc.get("inference_stats", {})
        return cls(model=doc["name"], version=str(doc["version"]),
                   inference_count=int(doc.get("inference_count", 0)),
                   execution_count=int(doc.get("execution_count", 0)),
                   counts={k: int(stats.get(k, {}).get("count", 0)) for k in KINDS},
                   ns={k: int(stats.get(k, {}).get("ns", 0)) for k in KINDS},
                   batches={int(b["batch_size"]): int(b["compute_infer"]["count"])
                            for b in doc.get("batch_stats", []) if int(b["compute_infer"]["count"])})

    def minus(self, before: ModelStats | None) -> ModelStats:
        """What was counted since `before` (None: everything)."""
        if before is None:
            return self
        return ModelStats(self.model, self.version, self.inference_count - before.inference_count,
                          self.execution_count - before.execution_count,
                          {k: v - before.counts.get(k, 0) for k, v in self.counts.items()},
                          {k: v - before.ns.get(k, 0) for k, v in self.ns.items()},
                          {b: n - before.batches.get(b, 0) for b, n in self.batches.items()
                           if n - before.batches.get(b, 0)})

    def summary(self) -> dict[str, Any]:
        """The figures a report compares: batch-size distribution, mean batch, queue and compute time."""
        queued = self.counts.get("queue", 0)  # requests that went through the scheduler's queue
        return {"model": self.model, "version": self.version, "requests": self.inference_count,
                "executions": self.execution_count, "failed": self.counts.get("fail", 0),
                "batch_sizes": dict(sorted(self.batches.items())),
                "mean_batch": self.inference_count / self.execution_count if self.execution_count else None,
                "queue_ms_mean": self.ns.get("queue", 0) / queued / 1e6 if queued else None,
                "compute_infer_ms_per_batch": (self.ns.get("compute_infer", 0) / self.execution_count / 1e6
                                               if self.execution_count else None)}


def read_statistics(http_url: str, model: str | None = None) -> dict[tuple[str, str], ModelStats]:
    """(model, version) -> counters, from Triton's statistics extension at `http_url` (host:8000)."""
    path = f"/v2/models/{model}/stats" if model else "/v2/models/stats"
    doc = json.loads(_get(_url(http_url).rstrip("/") + path))
    return {(s.model, s.version): s for s in map(ModelStats.from_extension, doc.get("model_stats", []))}


def model_ready(http_url: str, model: str) -> bool:
    try:
        with urllib.request.urlopen(f"{_url(http_url).rstrip('/')}/v2/models/{model}/ready", timeout=HTTP_TIMEOUT_S) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


SAMPLE_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def read_metrics(metrics_url: str) -> list[dict[str, Any]]:
    """Every sample of a Prometheus text endpoint (Triton's host:8002/metrics) as {name, labels, value}, names
    as the endpoint writes them (Triton's counters carry no `_total`, which prometheus_client's parser adds)."""
    url = _url(metrics_url)
    text = _get(url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics").decode()
    out = []
    for line in text.splitlines():
        if (m := SAMPLE_RE.match(line)) and not line.startswith("#"):
            out.append({"name": m[1], "labels": dict(LABEL_RE.findall(m[2] or "")), "value": float(m[3])})
    return out


def metric_totals(samples: list[dict[str, Any]], model: str) -> dict[str, float]:
    """Triton's per-model counters (summed over versions) and latency quantiles of `model`, by metric name."""
    out: dict[str, float] = {}
    for s in samples:
        if s["labels"].get("model") != model or not s["name"].startswith("nv_"):
            continue
        name = s["name"] + (f"{{quantile={s['labels']['quantile']}}}" if "quantile" in s["labels"] else "")
        out[name] = out.get(name, 0.0) + s["value"]
    return out


def settled_statistics(http_url: str, model: str, timeout_s: float = 5.0) -> ModelStats:
    """The model's counters once two reads 0.1 s apart agree: requests answered just before (the outputs check, an
    earlier test) may reach Triton's statistics after their answers, and must not be counted in the next test."""
    deadline, last = time.monotonic() + timeout_s, None
    while True:
        now = next((s for (m, _), s in read_statistics(http_url, model).items() if m == model), None)
        if now is None:
            raise ArtifactError(f"the Triton server at {http_url} reports no statistics for {model}")
        if last is not None and now.inference_count == last.inference_count or time.monotonic() > deadline:
            return now
        last = now
        time.sleep(0.1)


def wait_for_count(http_url: str, model: str, before: ModelStats | None, requests: int,
                   timeout_s: float = 10.0) -> ModelStats:
    """The counters since `before` once they hold `requests` answered requests: Triton updates its statistics
    as it releases a request, which may be just after the client has the answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = [s for (m, _), s in read_statistics(http_url, model).items() if m == model]
        if not now:
            raise ArtifactError(f"the Triton server at {http_url} reports no statistics for {model}")
        delta = now[0].minus(before)
        if delta.inference_count >= requests or time.monotonic() > deadline:
            return delta
        time.sleep(0.05)


class StatisticsCollector:
    """A prometheus_client collector reading Triton's statistics on every scrape: the executions per batch
    size (`scaleproof_batch_executions_total{model, version, batch_size}`) Triton's own metrics lack."""

    def __init__(self, http_url: str) -> None:
        self.http_url = http_url

    def collect(self):
        from prometheus_client.core import Metric

        batches = Metric(BATCH_SERIES.removesuffix("_total"), "Batches executed, per batch size", "counter")
        for s in read_statistics(self.http_url).values():
            for size, n in sorted(s.batches.items()):
                batches.add_sample(BATCH_SERIES, {"model": s.model, "version": s.version, "batch_size": str(size),
                                                  "source": "triton"}, float(n))
        yield batches
