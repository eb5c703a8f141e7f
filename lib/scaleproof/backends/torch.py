"""PyTorch backend: eager FP32 is the baseline every engine is compared with; on CUDA also FP16/BF16
channels-last, CUDA graphs per batch bucket and torch.compile.

The stored engine is the model's weights (safetensors) plus the recipe in its sidecar; the CUDA
graphs and compiled kernels are made when the engine is loaded, for this process, and the time
that takes is reported with the engine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine_store import Sidecar, check_engine, current_device, save_engine
from ..errors import ParamsError
from ..provenance import sha256_file
from .base import BuildInputs, Engine, usable_threads
from .cuda_io import DeviceSamples, pinned_array

NAME = "torch"
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
GRAPH_MODES = ("cuda_graph", "compile")
WARMUP_BEFORE_CAPTURE = 3


def version() -> str:
    import torch

    return torch.__version__


def buckets(max_batch: int) -> list[int]:
    """Batch sizes graphs are captured for: powers of two up to max_batch, and max_batch itself."""
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return [*out, max_batch]


def bucket_for(n: int, sizes: list[int]) -> int:
    for b in sizes:
        if n <= b:
            return b
    raise ValueError(f"batch of {n} exceeds the engine's max batch {sizes[-1]}")


class TorchEngine(Engine):
    backend = NAME

    def __init__(self, module, sc: Sidecar, threads: int) -> None:
        import torch

        torch.set_num_threads(usable_threads(threads))
        t0 = time.perf_counter()
        self.name, self.precision = sc.name, sc.precision
        self.max_batch = sc.input_profile["max_batch"]
        self.mode = sc.extra.get("mode", "eager")
        self.device = "cuda" if sc.compute_capability else "cpu"
        self._dtype = getattr(torch, DTYPES[sc.precision])
        self._channels_last = bool(sc.extra.get("channels_last"))
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        self._module = module.eval().to(self.device, self._dtype, memory_format=fmt)
        self._pinned: list = []  # host buffers handed out; kept alive with the engine
        self._info: dict[str, Any] = {"mode": self.mode, "channels_last": self._channels_last}
        if self.device == "cuda":
            self._info.update(tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
        fn = self._module
        if self.mode == "compile":
            fn = torch.compile(self._module, mode=sc.extra.get("compile_mode", "default"))
            self._info["compile_mode"] = sc.extra.get("compile_mode", "default")
        self._fn = fn
        self._graphs: dict[int, tuple] = {}
        if self.mode in GRAPH_MODES:
            self._sizes = buckets(self.max_batch)
            self._capture(sc.input_profile["shape"])
            self._info["graph_buckets"] = self._sizes
        self._info["load_seconds"] = round(time.perf_counter() - t0, 3)

    def _capture(self, shape: list[int]) -> None:
        """Warm up (compiling, for compile mode) and capture one graph per bucket, each with its own
        static input and output buffers and its own memory pool (buckets replay in any order)."""
        import torch

        stream = torch.cuda.Stream()
        with torch.inference_mode():
            for b in self._sizes:
                static_in = torch.zeros((b, *shape), device="cuda", dtype=self._dtype)
                if self._channels_last:
                    static_in = static_in.contiguous(memory_format=torch.channels_last)
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(WARMUP_BEFORE_CAPTURE):
                        self._fn(static_in)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    static_out = self._fn(static_in)
                self._graphs[b] = (graph, static_in, static_out)
        torch.cuda.synchronize()

    def host_buffer(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """Page-locked host memory on CUDA, so input copies go straight to the device."""
        if self.device != "cuda":
            return super().host_buffer(shape, dtype)
        return pinned_array(shape, dtype, self._pinned)

    def load_samples(self, samples: np.ndarray) -> None:
        """On CUDA the samples live in device memory, in the engine's dtype and layout (cuda_io)."""
        if self.device != "cuda":
            return super().load_samples(samples)
        self._dev_samples = DeviceSamples(samples, self._dtype, self.max_batch, self._channels_last)

    def infer_indices(self, idx: np.ndarray) -> np.ndarray:
        if self.device != "cuda":
            return super().infer_indices(idx)
        import torch

        n = len(idx)
        with torch.inference_mode():
            batch = self._dev_samples.gather(idx)
            if self._graphs:
                graph, static_in, static_out = self._graphs[bucket_for(n, self._sizes)]
                static_in[:n].copy_(batch)
                graph.replay()
                return static_out[:n].float().cpu().numpy()
            return self._fn(batch).float().cpu().numpy()

    def infer(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            src = torch.from_numpy(x)
            if self._graphs:
                n = len(x)
                graph, static_in, static_out = self._graphs[bucket_for(n, self._sizes)]
                static_in[:n].copy_(src, non_blocking=True)  # rows past n keep old data: rows are independent
                graph.replay()
                return static_out[:n].float().cpu().numpy()
            xd = src.to(self.device, non_blocking=True)
            if self._dtype != torch.float32:
                xd = xd.to(self._dtype)
            if self._channels_last:
                xd = xd.contiguous(memory_format=torch.channels_last)
            return self._fn(xd).float().cpu().numpy()

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def memory(self) -> dict[str, Any]:
        if self.device != "cuda":
            return {}
        import torch

        out: dict[str, Any] = {"gpu_peak_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                               "gpu_reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1)}
        out["nvml_process_used_mb"] = nvml_process_memory_mb()
        return out

    def close(self) -> None:
        self._graphs.clear()
        self._pinned.clear()
        self._dev_samples = None


def nvml_process_memory_mb() -> float | None:
    """GPU memory NVML attributes to this process, or None where NVML or the pid is not visible."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        import torch

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory:
                return round(proc.usedGpuMemory / 2**20, 1)
    except pynvml.NVMLError:
        return None
    return None  # in a container NVML may report host pids, which do not match ours


def supported(device: str) -> dict[str, set[str]]:
    """precision -> modes this backend builds on `device`."""
    if device == "cuda":
        return {p: {"eager", "cuda_graph", "compile"} for p in DTYPES}
    return {"fp32": {"eager"}}


def build(inputs: BuildInputs, precision: str, store: Path, source_label: str, mode: str = "eager",
          compile_mode: str = "default") -> Path:
    """Store the model's weights as the engine, with the recipe (precision, mode) that loads it."""
    from safetensors.torch import save_file

    from ..zoo import load_model

    device = current_device()
    here = "cuda" if device["compute_capability"] else "cpu"
    if mode not in supported(here).get(precision, set()):
        raise ParamsError(f"torch backend on {here} does not build {precision} {mode}")
    name = f"{NAME}-{precision}" + ("" if mode == "eager" else f"-{mode}")
    t0 = time.perf_counter()
    bundle = load_model(inputs.model_spec, inputs.input_shape)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in bundle.module.state_dict().items()}, str(out))
        extra = {"model_spec": inputs.model_spec, "mode": mode, "channels_last": here == "cuda" and precision != "fp32"}
        if mode == "compile":
            extra["compile_mode"] = compile_mode
        sc = Sidecar(
            name=name, backend=NAME, backend_version=version(), precision=precision, **device,
            input_profile={"name": inputs.input_name, "shape": list(inputs.input_shape), "min_batch": 1,
                           "max_batch": inputs.max_batch},
            source=source_label, source_sha256=sha256_file(out), engine_file=out.name,
            build_seconds=round(time.perf_counter() - t0, 3), extra=extra,
        )
        return save_engine(store, sc, out)


def load(sidecar_path: Path, threads: int = 0, source_sha256: str | None = None) -> TorchEngine:
    from safetensors.torch import load_file

    from ..zoo import load_model

    sc, path = check_engine(sidecar_path, version(), source_sha256)
    bundle = load_model(sc.extra["model_spec"], sc.input_profile["shape"])
    bundle.module.load_state_dict(load_file(str(path)))
    return TorchEngine(bundle.module, sc, threads)
