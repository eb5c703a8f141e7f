"""ONNX Runtime on a CUDA GPU (onnxruntime-gpu, the `gpu` extra): the exported ONNX model itself (FP32, or the FP16
model 02_calibrate writes) measured on the GPU beside the PyTorch engines, inputs and outputs bound to device
buffers through IOBinding.

CUDA graphs are not used: ORT captures one per fixed set of input shapes (`enable_cuda_graph`, every node on the
CUDA provider), and the batcher's batches vary in size, so each size would need its own capture (`gpu_graph_id`).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine_store import Sidecar, check_engine, current_device, save_engine
from ..io_spec import Feed
from ..provenance import sha256_file
from .base import BuildInputs, BuildJob, Engine, EngineSkipped, usable_threads

NAME = "onnxruntime_cuda"
PROVIDER = "CUDAExecutionProvider"
DEVICE = "cuda"  # where IOBinding puts inputs and outputs
INSTALL = "pip install 'scaleproof[gpu]' (onnxruntime-gpu, with the CUDA and cuDNN libraries its release names)"
NO_CUDA_GRAPH = ("not captured: ORT captures one CUDA graph per fixed set of input shapes, and the batcher's batch "
                 "sizes vary")


def version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def available() -> bool:
    """Whether this ONNX Runtime has the CUDA provider (onnxruntime-gpu rather than onnxruntime)."""
    import onnxruntime as ort

    return PROVIDER in ort.get_available_providers()


def refusal(device: str) -> str | None:
    """Why this machine builds no ONNX Runtime CUDA engine, or None where it does."""
    if device != "cuda":
        return "ONNX Runtime's CUDA engine needs a CUDA GPU; this machine has none"
    if not available():
        return f"ONNX Runtime {version()} has no CUDAExecutionProvider: {INSTALL}"
    return None


def session(path: str | Path, threads: int = 0, optimized_out: str | Path | None = None):
    """A session on the CUDA provider (CPU for the nodes it cannot take), graph fully optimized for it."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = usable_threads(threads)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if optimized_out is not None:
        so.optimized_model_filepath = str(optimized_out)
    return ort.InferenceSession(str(path), sess_options=so, providers=[PROVIDER, "CPUExecutionProvider"])


class OrtCudaEngine(Engine):
    backend = NAME
    device = "cuda"

    def __init__(self, path: Path, sc: Sidecar, threads: int) -> None:
        t0 = time.perf_counter()
        self.name, self.precision = sc.name, sc.precision
        self.max_batch = sc.input_profile["max_batch"]
        self._sess = session(path, threads)
        self._binding = self._sess.io_binding()
        self._outputs = [o.name for o in self._sess.get_outputs()]
        self._info: dict[str, Any] = {"providers": self._sess.get_providers(), "io_binding": DEVICE,
                                      "cuda_graph": NO_CUDA_GRAPH, "load_seconds": round(time.perf_counter() - t0, 3)}

    def infer(self, x: Feed) -> list[np.ndarray]:
        """Inputs copied to device buffers, outputs left on the device by the run, then copied back."""
        import onnxruntime as ort

        b = self._binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        for name, arr in x.items():
            b.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr), DEVICE, 0))
        for name in self._outputs:
            b.bind_output(name, DEVICE)
        self._sess.run_with_iobinding(b)
        return b.copy_outputs_to_cpu()

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def memory(self) -> dict[str, Any]:
        """What NVML attributes to this process (ORT's arena is not torch's allocator)."""
        from .torch import nvml_process_memory_mb

        return {"nvml_process_used_mb": nvml_process_memory_mb()}

    def close(self) -> None:
        self._binding = None
        self._sess = None


def supported(device: str) -> dict[str, set[str]]:
    """precision -> modes: the FP32 export and the FP16 model, where the CUDA provider is installed."""
    return {"fp32": {""}, "fp16": {""}} if device == "cuda" and available() else {}


def build_engine(job: BuildJob) -> Path:
    if job.precision not in job.inputs.onnx_by_precision:
        raise EngineSkipped(f"no {job.precision} ONNX model in this run (02_calibrate writes the FP16 one)")
    src = Path(job.inputs.onnx_by_precision[job.precision])
    return build(job.inputs, job.precision, job.store, f"{src.parent.name}/{src.name}")


def build_record(sc: Sidecar) -> dict:
    return {"onnxruntime_cuda": {"providers": sc.extra["providers"], "cuda_graph": NO_CUDA_GRAPH}}


def build(inputs: BuildInputs, precision: str, store: Path, source_label: str) -> Path:
    """Optimize the ONNX model of `precision` for the CUDA provider and store it; refused without one."""
    device = current_device()
    why = refusal("cuda" if device["compute_capability"] else "cpu")
    if why:
        raise EngineSkipped(why)
    src = Path(inputs.onnx_by_precision[precision])
    name = f"{NAME}-{precision}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.onnx"
        t0 = time.perf_counter()
        sess = session(src, inputs.threads, optimized_out=out)
        providers = sess.get_providers()
        sc = Sidecar(
            name=name, backend=NAME, backend_version=version(), precision=precision, **device,
            input_profile=inputs.profile(), source=source_label, source_sha256=sha256_file(src),
            engine_file=out.name, build_seconds=round(time.perf_counter() - t0, 3),
            extra={"graph_optimization_level": "ORT_ENABLE_ALL", "providers": providers},
        )
        return save_engine(store, sc, out)


def load(sidecar_path: Path, threads: int = 0, source_sha256: str | None = None) -> OrtCudaEngine:
    sc, path = check_engine(sidecar_path, version(), source_sha256)
    return OrtCudaEngine(path, sc, threads)
