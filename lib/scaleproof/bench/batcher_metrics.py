"""The in-process dynamic batcher's counters as Prometheus metrics, named as Triton names its own.

While an exporter is started (`BatcherExporter(...).start(port)`), every `DynamicBatcher` reports each batch
it forms and runs to it, so a run's own load test can be scraped like a Triton server: the same
`nv_inference_count` (requests), `nv_inference_exec_count` (batches), `nv_inference_queue_duration_us`,
`nv_inference_compute_infer_duration_us` per model, the executions per batch size
(`scaleproof_batch_executions_total`, as `scaleproof watch --listen` exports it for Triton) and
`scaleproof_model_info` (model, version, precision, GPU type, run id) for a dashboard's legend.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from ..errors import ParamsError
from ..serving_metrics import BATCH_SERIES
from .batcher import DynamicBatcher

# Triton's metric names and what they count (Triton's own help texts, shortened)
TRITON_COUNTERS = {"nv_inference_count": "Number of inferences performed (requests, not batches)",
                   "nv_inference_exec_count": "Number of model executions performed (batches)",
                   "nv_inference_request_success": "Number of successful inference requests",
                   "nv_inference_queue_duration_us": "Cumulative inference queuing duration in microseconds",
                   "nv_inference_compute_infer_duration_us": "Cumulative compute inference duration in microseconds"}
INFO_SERIES = "scaleproof_model_info"


class BatcherExporter:
    """Counters per model (the engine's name unless `models` maps an engine name to another) fed by every
    DynamicBatcher while started; a prometheus_client collector."""

    def __init__(self, info: dict[str, dict[str, str]] | None = None, models: dict[str, str] | None = None,
                 registry=None) -> None:
        """`info`: model -> labels of its `scaleproof_model_info` series (version, precision, gpu_type, run_id);
        `models`: engine name -> the model name its series carry (default: the engine's name)."""
        from prometheus_client import CollectorRegistry

        self.info, self.models = info or {}, models or {}
        self.registry = registry or CollectorRegistry()
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {}
        self._batches: dict[str, Counter[int]] = {}
        self._server = None

    # the batcher's side -------------------------------------------------------------------------
    def formed(self, engine, n: int, waited_s: float) -> None:
        with self._lock:
            model = self.models.get(engine.name, engine.name)
            c = self._counts.setdefault(model, Counter())
            c["nv_inference_count"] += n
            c["nv_inference_request_success"] += n
            c["nv_inference_exec_count"] += 1
            c["nv_inference_queue_duration_us"] += waited_s * 1e6
            self._batches.setdefault(model, Counter())[n] += 1

    def computed(self, engine, took_s: float) -> None:
        with self._lock:
            model = self.models.get(engine.name, engine.name)
            self._counts.setdefault(model, Counter())["nv_inference_compute_infer_duration_us"] += took_s * 1e6

    # Prometheus's side --------------------------------------------------------------------------
    def collect(self):
        from prometheus_client.core import Metric

        with self._lock:
            counts = {m: dict(c) for m, c in self._counts.items()}
            batches = {m: dict(c) for m, c in self._batches.items()}
        for name, help_text in TRITON_COUNTERS.items():
            metric = Metric(name, help_text, "counter")  # Triton's names carry no _total: kept as they are
            for model, c in sorted(counts.items()):
                metric.add_sample(name, self._labels(model), float(c.get(name, 0)))
            yield metric
        per_size = Metric(BATCH_SERIES.removesuffix("_total"), "Batches executed, per batch size", "counter")
        for model, c in sorted(batches.items()):
            for size, n in sorted(c.items()):
                per_size.add_sample(BATCH_SERIES, {**self._labels(model), "batch_size": str(size),
                                                   "source": "in_process"}, float(n))
        yield per_size
        info = Metric(INFO_SERIES, "What a model serves: version, precision, GPU type and the run it comes from",
                      "gauge")
        for model, labels in sorted(self.info.items()):
            info.add_sample(INFO_SERIES, {"model": model, **labels}, 1.0)
        yield info

    def _labels(self, model: str) -> dict[str, str]:
        return {"model": model, "version": self.info.get(model, {}).get("version", "")}

    def start(self, port: int, addr: str = "127.0.0.1") -> BatcherExporter:
        """Serve /metrics on `addr:port` and take every DynamicBatcher's batches from now on."""
        from prometheus_client import start_http_server

        try:
            self._server, _ = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as e:
            raise ParamsError(f"cannot export the batcher's metrics on {addr}:{port} ({e}): pick a free port") from None
        self.registry.register(self)
        DynamicBatcher.observers.append(self)
        return self

    def stop(self) -> None:
        if self in DynamicBatcher.observers:
            DynamicBatcher.observers.remove(self)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> BatcherExporter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
