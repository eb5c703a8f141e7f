"""`scaleproof watch URL`: what a running Triton server serves, from its statistics and its Prometheus metrics.

Reads `URL` (Triton's HTTP endpoint, host:8000) twice, `--interval` seconds apart, and prints per model
version what happened in between: requests per second, mean batch, the batch-size distribution, queue and
compute time, readiness, and Triton's P99 where its summary latencies are on. `--listen PORT` instead serves
the statistics as Prometheus series (`scaleproof_batch_executions_total` per batch size) for a Prometheus
to scrape beside Triton's own metrics, until interrupted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from . import serving_metrics as sm


def observe(url: str, metrics_url: str | None, interval_s: float, model: str | None = None) -> list[dict[str, Any]]:
    """Per model version: the statistics over `interval_s`, readiness and P99 (where Triton exports it)."""
    before = sm.read_statistics(url, model)
    t0 = time.monotonic()
    time.sleep(interval_s)
    after = sm.read_statistics(url, model)
    elapsed = time.monotonic() - t0
    samples = sm.read_metrics(metrics_url) if metrics_url else []
    rows = []
    for key, s in sorted(after.items()):
        delta = s.minus(before.get(key)).summary()
        p99 = [x["value"] for x in samples if x["name"] == "nv_inference_request_summary_us"
               and x["labels"].get("model") == s.model and x["labels"].get("version") == s.version
               and x["labels"].get("quantile") == "0.99"]
        rows.append({**delta, "qps": delta["requests"] / elapsed, "interval_s": round(elapsed, 3),
                     "ready": sm.model_ready(url, s.model),
                     "p99_ms": p99[0] / 1000 if p99 and p99[0] == p99[0] else None,  # NaN: no request yet
                     "lifetime": s.summary()})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} ms"

    lines = []
    for r in rows:
        mean = f"{r['mean_batch']:.2f}" if r["mean_batch"] else "-"
        lines.append(f"{r['model']} v{r['version']} ({'ready' if r['ready'] else 'NOT READY'}): {r['qps']:,.1f} QPS over "
                     f"{r['interval_s']:g} s, mean batch {mean}, queue {ms(r['queue_ms_mean'])}, compute "
                     f"{ms(r['compute_infer_ms_per_batch'])} per batch, P99 {ms(r['p99_ms'])}")
        if r["batch_sizes"]:
            lines.append("  batches by size: " + ", ".join(f"{b}: {n}" for b, n in r["batch_sizes"].items()))
    return "\n".join(lines) or "no model statistics (no model loaded?)"


def listen(url: str, port: int, addr: str) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(sm.StatisticsCollector(url))
    server, _ = start_http_server(port, addr=addr, registry=registry)
    print(f"serving {url}'s statistics as Prometheus series on http://{addr}:{port}/metrics (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.shutdown()


def cmd_watch(args: argparse.Namespace) -> int:
    if args.listen:
        listen(args.url, args.listen, args.listen_addr)
        return 0
    metrics = args.metrics_url
    if metrics is None:  # Triton's default: the same host, port 8002
        host = args.url.split("://")[-1].rsplit(":", 1)[0]
        metrics = f"{host}:8002/metrics"
    rows = observe(args.url, metrics or None, args.interval, args.model)
    print(render(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
        print(f"written: {args.json}")
    return 0


def register(sub) -> None:
    w = sub.add_parser("watch", help="what a running Triton server serves: QPS, batch sizes, queue time, P99",
                       description=__doc__.split("\n\n", 1)[1])
    w.add_argument("url", help="Triton's HTTP endpoint, e.g. localhost:8000")
    w.add_argument("--metrics-url", default=None,
                   help="Triton's Prometheus endpoint (default: the same host, port 8002; '' reads none)")
    w.add_argument("--model", default=None, help="only this model (default: every model the server has)")
    w.add_argument("--interval", type=float, default=10.0, help="seconds between the two readings (default: 10)")
    w.add_argument("--json", default=None, metavar="FILE", help="also write the figures to FILE")
    w.add_argument("--listen", type=int, default=None, metavar="PORT",
                   help="serve the statistics as Prometheus series on PORT instead, until interrupted")
    w.add_argument("--listen-addr", default="0.0.0.0", help="address for --listen (default: all interfaces)")
    w.set_defaults(func=cmd_watch)
