"""ONNX Runtime backend (CPU): the engine is the ORT-optimized model for this machine."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..engine_store import Sidecar, check_engine, current_device, save_engine
from ..io_spec import Feed
from ..provenance import sha256_file
from .base import BuildInputs, BuildJob, Engine, usable_threads

NAME = "onnxruntime"


def version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def ort_session(path: str | Path, threads: int = 0, optimized_out: str | Path | None = None):
    """A CPU session with a fixed thread count (timings need it), optionally saving the optimized graph."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = usable_threads(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if optimized_out is not None:
        so.optimized_model_filepath = str(optimized_out)
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


class OrtEngine(Engine):
    backend = NAME
    device = "cpu"

    def __init__(self, path: Path, sc: Sidecar, threads: int) -> None:
        self.name, self.precision = sc.name, sc.precision
        self.max_batch = sc.input_profile["max_batch"]
        self._sess = ort_session(path, threads)

    def infer(self, x: Feed) -> list[np.ndarray]:
        return self._sess.run(None, x)


def supported(device: str) -> dict[str, set[str]]:
    """precision -> modes built on `device`: ONNX Runtime's CPU provider only."""
    return {"fp32": {""}, "int8": {""}} if device == "cpu" else {}


def build_engine(job: BuildJob) -> Path:
    src = Path(job.inputs.onnx_by_precision[job.precision])
    return build(job.inputs, job.precision, job.store, f"{src.parent.name}/{src.name}")


def build_record(sc: Sidecar) -> dict:
    return {}  # build.json's common fields say it all


def build(inputs: BuildInputs, precision: str, store: Path, source_label: str) -> Path:
    """Optimize the ONNX model of `precision` for this CPU and store it; returns the sidecar path."""
    src = Path(inputs.onnx_by_precision[precision])
    name = f"{NAME}-{precision}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.onnx"
        t0 = time.perf_counter()
        ort_session(src, inputs.threads, optimized_out=out)
        seconds = time.perf_counter() - t0
        sc = Sidecar(
            name=name, backend=NAME, backend_version=version(), precision=precision, **current_device(),
            input_profile=inputs.profile(),
            source=source_label, source_sha256=sha256_file(src), engine_file=f"{name}.onnx",
            build_seconds=round(seconds, 3),
            extra={"graph_optimization_level": "ORT_ENABLE_ALL", "providers": ["CPUExecutionProvider"]},
        )
        return save_engine(store, sc, out)


def load(sidecar_path: Path, threads: int = 0, source_sha256: str | None = None) -> OrtEngine:
    sc, path = check_engine(sidecar_path, version(), source_sha256)
    return OrtEngine(path, sc, threads)
