"""A deployed model answered by a real Triton server, measured with LoadGen beside the same engine in process.

`scaleproof serve-bench RUN --repo DIR` starts `triton_server.py` in the serving environment (`.venv-serve`,
made by `make serve-env`; `SCALEPROOF_SERVE_PYTHON` names another interpreter) for each ONNX Runtime model the
run deployed there, then:

1. sends every validation sample through Triton's gRPC endpoint and compares the answers with the run's engine
   loaded in this process (same ONNX file, same samples);
2. measures the Server peak at the run's P99 SLA twice with the same method the run priced with (repeated
   searches and a confirmation run at the pricing floor): LoadGen driving the in-process dynamic batcher,
   and LoadGen driving Triton over gRPC (one request per query, Triton's dynamic batcher doing the batching,
   configured from the deployed config.pbtxt). Both on this machine, one after the other.

The served runs' batch sizes, queue and compute time are Triton's own: read from its statistics extension
before and after each LoadGen run (`serving_metrics`), so they sit beside the in-process batcher's and the
report compares the two. At the end Triton's Prometheus metrics are read as well, and its totals recorded.

Results go to `<repo>/served/<model>.json`, LoadGen logs beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import paths, serving_metrics, stages
from .errors import ArtifactError, ParamsError
from .io_spec import feed_len
from .provenance import write_json
from .stages import build

logger = logging.getLogger(__name__)

SERVER_SCRIPT = paths.PACKAGE_DIR / "triton_server.py"
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0  # a request the server has not answered by then fails (and the measurement with it)
NUMPY_TO_TRITON = {"float32": "FP32", "float16": "FP16", "float64": "FP64", "int64": "INT64", "int32": "INT32",
                   "int8": "INT8", "uint8": "UINT8", "bool": "BOOL"}


def serve_python() -> Path:
    """The serving environment's interpreter (nvidia-pytriton pins numpy < 2, so it has its own)."""
    py = Path(os.environ.get("SCALEPROOF_SERVE_PYTHON", paths.PROJECT_DIR / ".venv-serve" / "bin" / "python"))
    if not py.is_file():
        raise ParamsError(f"no serving environment at {py}: run `make serve-env` (or set SCALEPROOF_SERVE_PYTHON "
                          "to a Python with nvidia-pytriton and onnxruntime)")
    return py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """`triton_server.py` for one model in a subprocess of its own session; stopped (SIGINT, then SIGKILL to
    its process group) when the block ends, whatever happens inside it."""

    def __init__(self, repo: Path, model: str, log_file: Path, threads: int = 0,
                 batcher: dict[str, Any] | None = None, metrics_port: int | None = None) -> None:
        self.repo, self.model, self.log_file, self.threads, self.batcher = repo, model, log_file, threads, batcher
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), metrics_port or free_port()
        self.url = f"127.0.0.1:{self.grpc_port}"
        self.http_url = f"127.0.0.1:{self.http_port}"
        self.metrics_url = f"127.0.0.1:{self.metrics_port}/metrics"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> TritonServer:
        cmd = [str(serve_python()), str(SERVER_SCRIPT), "--repo", str(self.repo), "--model", self.model,
               "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
               "--metrics-port", str(self.metrics_port), "--threads", str(self.threads),
               "--metrics-config", "summary_latencies=true"]  # P99 as a metric, as the Kubernetes objects ask
        if self.batcher:  # Triton batches as the in-process batcher it is compared with
            cmd += ["--max-batch", str(self.batcher["max_batch"]),
                    "--queue-delay-us", str(round(self.batcher["max_queue_delay_ms"] * 1000))]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(self.url)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ArtifactError(f"the Triton server for {self.model} exited with code {self.proc.returncode} "
                                    f"before it was ready; its log ends:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if client.is_server_ready() and client.is_model_ready(self.model):
                    return
            time.sleep(0.5)
        raise ArtifactError(f"the Triton server for {self.model} was not ready after {READY_TIMEOUT_S:g} s; "
                            f"its log ends:\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGINT to the server's process group, then SIGKILL to whatever of it is left (tritonserver and the
        Python backend's stubs are children of the script, in its group)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def __exit__(self, *exc) -> None:
        self.stop()


def infer_inputs(x: dict[str, np.ndarray], rows: slice | int) -> list:
    """tritonclient InferInputs for `rows` of every input (an int: one sample, batch dimension kept)."""
    import tritonclient.grpc as grpcclient

    out = []
    for name, v in x.items():
        part = v[rows:rows + 1] if isinstance(rows, int) else v[rows]
        inp = grpcclient.InferInput(name, list(part.shape), NUMPY_TO_TRITON[part.dtype.name])
        inp.set_data_from_numpy(np.ascontiguousarray(part))
        out.append(inp)
    return out


class TritonSut:
    """LoadGen's system under test for a served model (`bench.sut.Sut`): each query is one gRPC request (async),
    completed from the client's callback thread. Triton forms the batches: `batch_sizes`, queue and compute
    time are what its statistics counted between start and stop (`serving_metrics.ModelStats`)."""

    def __init__(self, url: str, model: str, x: dict[str, np.ndarray], output: str, complete,
                 http_url: str) -> None:
        import tritonclient.grpc as grpcclient

        self.client = grpcclient.InferenceServerClient(url)
        self.model, self.output, self.complete, self.http_url = model, output, complete, http_url
        self.sent = 0
        self.before: serving_metrics.ModelStats | None = None
        self.statistics: dict[str, Any] | None = None
        # requests are built once per sample and reused: the harness should cost as little as the in-process one
        self.requests = [infer_inputs(x, i) for i in range(len(next(iter(x.values()))))]
        self.batch_sizes: Counter[int] = Counter()
        self.error: BaseException | None = None
        self._pending = 0
        self._lock = threading.Condition()

    def start(self) -> TritonSut:
        self.before = serving_metrics.settled_statistics(self.http_url, self.model)
        return self

    def submit(self, requests: list[tuple[int, int]]) -> None:
        for rid, idx in requests:
            with self._lock:
                self._pending += 1
            try:
                self.client.async_infer(self.model, self.requests[idx], client_timeout=REQUEST_TIMEOUT_S,
                                        callback=lambda result, error, rid=rid: self._done(rid, result, error))
            except Exception as e:  # noqa: BLE001 - never into LoadGen's issue thread: complete it, report at stop
                self._done(rid, None, e)
        self.sent += len(requests)

    def _done(self, rid: int, result, error) -> None:
        try:
            if error is not None:
                raise error
            self.complete([rid], result.as_numpy(self.output))
        except BaseException as e:  # LoadGen must still hear of the query, or it waits for ever
            self.error = self.error or e
            self.complete([rid], None)
        finally:
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()

    def stop(self) -> None:
        with self._lock:
            drained = self._lock.wait_for(lambda: self._pending == 0, timeout=REQUEST_TIMEOUT_S + 10)
        self.client.close()
        if not drained:
            raise ArtifactError(f"{self._pending} request(s) to the Triton server got no answer or error in "
                                f"{REQUEST_TIMEOUT_S + 10:g} s after the test ended")
        if self.error is not None:
            raise ArtifactError(f"the Triton server failed a request: {self.error}")
        delta = serving_metrics.wait_for_count(self.http_url, self.model, self.before, self.sent)
        self.statistics = delta.summary()
        self.batch_sizes = Counter(delta.batches)

    def run_extra(self) -> dict[str, Any]:
        """Triton's queue and compute time for this test, and its counts (requests it saw vs sent)."""
        st = self.statistics or {}
        return {"queue_ms_mean": st.get("queue_ms_mean"), "compute_ms_per_batch": st.get("compute_infer_ms_per_batch"),
                "triton_requests": st.get("requests"), "requests_sent": self.sent}


class ServedEngine:
    """A served model as `loadgen.run_scenario` and the capacity search take a target: a name and `sut`."""

    def __init__(self, name: str, url: str, model: str, output: str, http_url: str) -> None:
        self.name, self.url, self.model, self.output, self.http_url = name, url, model, output, http_url

    def sut(self, library, config, complete) -> TritonSut:
        """Requests built from the library's samples (the server holds none); batching is Triton's, configured
        from the deployed config.pbtxt, so `config` is what that file says, not applied here."""
        return TritonSut(self.url, self.model, library.samples, self.output, complete, self.http_url)


def served_outputs(url: str, model: str, x: dict[str, np.ndarray], output: str, max_batch: int) -> np.ndarray:
    """The first output for every sample, asked of the server in batches of up to `max_batch`."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    n = len(next(iter(x.values())))
    try:
        return np.concatenate([client.infer(model, infer_inputs(x, slice(i, i + max_batch))).as_numpy(output)
                               for i in range(0, n, max_batch)])
    finally:
        client.close()


def compare_outputs(served: np.ndarray, local: np.ndarray) -> dict[str, Any]:
    agree = float(np.mean(served.argmax(-1) == local.argmax(-1))) if served.ndim > 1 else None
    return {"samples": int(len(local)), "max_abs_diff": float(np.max(np.abs(served.astype(np.float64) - local))),
            "allclose_1e-5": bool(np.allclose(served, local, rtol=1e-5, atol=1e-5)), "argmax_agreement": agree}


def deployed_models(repo: Path, run: Path) -> list[dict[str, Any]]:
    """The deploy entries of `run` that are pinned now and served by ONNX Runtime."""
    from .triton_repo import read_deploys

    doc = read_deploys(repo)
    mine = [d for d in doc["deploys"] if Path(d["run"]).resolve() == run.resolve() and d["backend"] == "onnxruntime"
            and doc["pins"].get(d["model"]) == d["version"]]
    if not mine:
        raise ParamsError(f"{repo} serves no ONNX Runtime model of {run} at its pinned version: "
                          f"deploy it first (scaleproof deploy {run} --repo {repo})")
    return mine


def serve_bench(run_dir: str | Path, repo: str | Path, model: str | None = None, log=logger.info,
                triton_metrics_port: int | None = None, in_process_metrics_port: int | None = None
                ) -> list[dict[str, Any]]:
    """Outputs and Server peak of each deployed ONNX Runtime model of the run, served and in process.
    `triton_metrics_port`: Triton's Prometheus port (default: a free one), for a Prometheus set up to scrape it;
    `in_process_metrics_port`: export the in-process batcher's counters there (`bench.batcher_metrics`)."""
    from .bench.batcher_metrics import BatcherExporter
    from .bench.capacity import capacity, pricing_floor
    from .bench.loadgen import LoadgenSettings
    from .config import Params
    from .stages.benchmark import measure_server
    from .triton_repo import example_inputs, verify_repo

    try:
        import tritonclient.grpc  # noqa: F401
    except ImportError as e:
        raise ParamsError(f"serve-bench needs Triton's gRPC client ({e}): pip install -e '.[serve]'") from None
    run, repo = Path(run_dir).resolve(), Path(repo).resolve()
    if not (repo / "deploy.json").is_file():
        raise ParamsError(f"{repo} holds no deployed model (no deploy.json): deploy it first "
                          f"(scaleproof deploy {run} --repo {repo})")
    problems, _ = verify_repo(repo)
    if problems:
        raise ArtifactError(f"{repo} fails verify, nothing served: " + "; ".join(problems[:5]))
    entries = [d for d in deployed_models(repo, run) if model in (None, d["model"])]
    if not entries:
        raise ParamsError(f"no deployed model named {model!r} of this run in {repo}")
    params = Params.from_yaml(run / "params.yaml")
    x = example_inputs(run)
    output = stages.read_typed(run, "01_export").output_names[0]  # the first output, compared and returned
    built = {e.name: e for e in stages.read_typed(run, "03_build").engines}
    floor = pricing_floor(params.min_priced_duration_s, gpu=False)["floor_s"]
    results = []
    for d in entries:
        out_dir = repo / "served" / d["model"]
        batcher = d["batcher"] or {"max_batch": params.batcher_max_batch, "max_queue_delay_ms": params.max_queue_delay_ms}
        cfg = LoadgenSettings(min_duration_s=params.loadgen_min_duration_s, min_queries=params.loadgen_min_queries,
                              sla_p99_ms=params.sla_p99_ms, max_batch=batcher["max_batch"],
                              max_delay_ms=batcher["max_queue_delay_ms"])
        # one configuration, the deployed one: no sweep here
        one = params.model_copy(update={"sweep_max_batch": [], "sweep_queue_delay_ms": [],
                                        "batcher_max_batch": cfg.max_batch, "max_queue_delay_ms": cfg.max_delay_ms})
        engine = build.load_engine(run, built[d["engine"]].model_dump(), params.threads)
        exporter = BatcherExporter({d["model"]: {"version": str(d["version"]), "run_id": d["run_id"],
                                                 "engine": d["engine"]}}, models={engine.name: d["model"]})
        if in_process_metrics_port:
            exporter.start(in_process_metrics_port)
        try:
            local = np.concatenate([engine.infer({k: v[i:i + engine.max_batch] for k, v in x.items()})[0]
                                    for i in range(0, feed_len(x), engine.max_batch)])
            log(f"{d['model']}: in process ({d['engine']}) …")
            in_offline = offline(engine, x, cfg, out_dir / "loadgen-in-process")
            # each search starts as the run's did: at half the Offline throughput of what is measured
            in_process = measure_server(engine, x, cfg, 0.5 * in_offline["qps"], one, out_dir / "loadgen-in-process", out_dir,
                                        None, gpu=False)
        finally:
            exporter.stop()
            engine.close()
        with TritonServer(repo, d["model"], out_dir / "triton_server.log", params.threads, batcher,
                          triton_metrics_port) as server:
            served = served_outputs(server.url, d["model"], x, output, batcher["max_batch"])
            check = compare_outputs(served, local)
            log(f"{d['model']}: served outputs vs in-process: max |diff| {check['max_abs_diff']:.3g}, "
                f"argmax agreement {check['argmax_agreement']}")
            log(f"{d['model']}: served by Triton over gRPC …")
            served_engine = ServedEngine(f"{d['model']} (Triton)", server.url, d["model"], output, server.http_url)
            served_offline = offline(served_engine, x, cfg, out_dir / "loadgen-served")
            served_server = measure_server(served_engine, x, cfg, 0.5 * served_offline["qps"], one,
                                           out_dir / "loadgen-served", out_dir,
                                           None, gpu=False)
            # the server's own account of everything it served, from both of its interfaces
            [stats] = [s for (m, _), s in serving_metrics.read_statistics(server.http_url, d["model"]).items()
                       if m == d["model"]]
            prometheus = serving_metrics.metric_totals(serving_metrics.read_metrics(server.metrics_url), d["model"])
        row = {"model": d["model"], "version": d["version"], "engine": d["engine"], "run_id": d["run_id"],
               "batcher": batcher, "sla_p99_ms": params.sla_p99_ms, "outputs": check,
               "in_process": {"offline": in_offline, "server": in_process},
               "served": {"offline": served_offline, "server": served_server},
               "served_by": "Triton Inference Server (nvidia-pytriton's binary, Python backend running ONNX Runtime "
                            "on CPU) over gRPC, one request per query",
               "capacity": {"in_process": capacity(in_process, floor), "served": capacity(served_server, floor)},
               "batching": {"in_process": batching_of(in_process), "served": batching_of(served_server),
                            "compared_over": "every Server run of the measurement (searches and confirmation)"},
               "triton": {"statistics": stats.summary(), "prometheus": prometheus,
                          "read_from": "the statistics extension (/v2/models/<model>/stats) and the metrics port "
                                       "(/metrics) at the end, over the server's whole life"}}
        write_json(out_dir.parent / f"{d['model']}.json", row)
        results.append(row)
    return results


def server_runs(server: dict[str, Any]) -> list[dict[str, Any]]:
    """Every LoadGen run of a Server measurement: its searches' runs and the confirmation's tries."""
    searches = [server["dynamic"], *server.get("dynamic_repeats", [])]
    return [r for s in searches for r in s["runs"]] + (server.get("confirmation") or {}).get("tries", [])


def batching_of(server: dict[str, Any]) -> dict[str, Any]:
    """Batch-size distribution, mean batch and mean queue time over a Server measurement's runs."""
    runs = server_runs(server)
    sizes: Counter[int] = Counter()
    queue_ms = requests = 0.0
    for r in runs:
        sizes.update({int(k): v for k, v in r["batch_sizes"].items()})
        n = sum(int(k) * v for k, v in r["batch_sizes"].items())
        if r.get("extra", {}).get("queue_ms_mean") is not None:
            queue_ms, requests = queue_ms + r["extra"]["queue_ms_mean"] * n, requests + n
    batches = sum(sizes.values())
    return {"runs": len(runs), "batch_sizes": dict(sorted(sizes.items())), "batches": batches,
            "mean_batch": sum(k * v for k, v in sizes.items()) / batches if batches else None,
            "queue_ms_mean": queue_ms / requests if requests else None}


def offline(engine, x: dict[str, np.ndarray], cfg, log_root: Path) -> dict[str, Any]:
    """LoadGen Offline (all queries at once): the throughput a Server search starts from."""
    from .bench.loadgen import Scenario, run_scenario

    r = run_scenario(engine, x, Scenario.offline, cfg, log_root / "offline", expected_qps=1000.0).as_dict()
    if not r["valid"] and r["qps"] > 0:  # LoadGen issues expected_qps x duration queries: too few, try once more
        r = run_scenario(engine, x, Scenario.offline, cfg, log_root / "offline",
                         expected_qps=1.5 * r["qps"]).as_dict()
    logger.info(f"{engine.name} offline: {r['qps']:,.0f} samples/s" if r["valid"] else f"{engine.name} offline: INVALID ({r['reason'][:90]})")
    return r


def summary(results: list[dict[str, Any]]) -> str:
    """One line per model: confirmed capacity in process and served (or why none), and the output check."""
    def qps(c: tuple[dict[str, Any] | None, str]) -> str:
        return f"{c[0]['qps']:,.0f} QPS (P99 {c[0]['p99_ms']:.1f} ms)" if c[0] else f"none ({c[1]})"

    def batching(b: dict[str, Any]) -> str:
        mean = f"mean batch {b['mean_batch']:.2f}" if b["mean_batch"] else "no batch"
        return mean + (f", queue {b['queue_ms_mean']:.2f} ms" if b["queue_ms_mean"] is not None else "")

    return "\n".join(f"{r['model']}: in process {qps(r['capacity']['in_process'])}; served by Triton "
                     f"{qps(r['capacity']['served'])}; outputs max |diff| {r['outputs']['max_abs_diff']:.3g}"
                     + (f", argmax agreement {r['outputs']['argmax_agreement']:.1%}"
                        if r["outputs"]["argmax_agreement"] is not None else "")
                     + f"\n  batching in process: {batching(r['batching']['in_process'])}; served (Triton's "
                       f"statistics): {batching(r['batching']['served'])}" for r in results)
