"""PyTorch backend: eager FP32 is the baseline every engine is compared with; on CUDA also FP16/BF16
channels-last, CUDA graphs per batch bucket and torch.compile; with torchao, INT8 and FP8 engines (low_precision).

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
from ..errors import ArtifactError, ParamsError
from ..io_spec import Feed, ModelIO
from ..provenance import sha256_file
from . import compile_cache, low_precision
from .base import BuildInputs, BuildJob, Engine, EngineSkipped, usable_threads
from .cuda_io import DeviceSamples, pinned_array

NAME = "torch"
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
GRAPH_MODES = ("cuda_graph", "compile")
WARMUP_BEFORE_CAPTURE = 3


def version() -> str:
    import torch

    return torch.__version__


def engine_dtype(precision: str) -> str:
    """The torch dtype an engine of `precision` holds its weights and activations in (torchao's precisions: the
    layers it leaves alone)."""
    return DTYPES.get(precision, low_precision.BASE_DTYPE)


def compiled_versions(sc: Sidecar) -> str:
    """torch's version, and torchao's for its precisions: the compile cache's folder level under the GPU type."""
    ao = sc.extra.get("low_precision", {}).get("torchao")
    return version() + (f"-torchao-{ao}" if ao else "")


def buckets(max_batch: int) -> list[int]:
    """Batch sizes graphs are captured for: powers of two up to max_batch, and max_batch itself."""
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return [*out, max_batch]


def capture_order(sizes: list[int]) -> list[int]:
    """The smallest bucket, then the rest from the largest down. torch.compile specializes its first graph to the
    first batch (batch 1 always gets a graph of its own) and compiles one dynamic graph at the next; max-autotune
    tunes that graph's kernels at that batch. In ascending order it tuned them at batch 2 and batch 256 ran
    batch-2 kernels: 14,000 against 23,500 img/s Offline for default mode (one H100 each, two machines); largest first made a third
    graph (benchmarks/RESULTS.md, "max-autotune through the compile cache", 2026-11-26). This order keeps two graphs and tunes the dynamic one at the
    largest batch."""
    return [sizes[0], *sorted(sizes[1:], reverse=True)]


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
        self.io = ModelIO.model_validate(sc.input_profile["io"])
        self.mode = sc.extra.get("mode", "eager")
        self.device = "cuda" if sc.compute_capability else "cpu"
        self._dtype = getattr(torch, engine_dtype(sc.precision))
        self._channels_last = bool(sc.extra.get("channels_last"))
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        self._module = module.eval().to(self.device, self._dtype, memory_format=fmt)
        self._pinned: list = []  # host buffers handed out; kept alive with the engine
        self._info: dict[str, Any] = {"mode": self.mode, "channels_last": self._channels_last}
        if self.device == "cuda":
            self._info.update(tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
        fn = self._module
        cache_before = None
        inductor_patch: dict[str, Any] = {}
        if sc.precision in low_precision.LOW_PRECISIONS:
            why = low_precision.refusal(sc.precision, sc.compute_capability, sc.device_name)
            if why:
                raise EngineSkipped(why)
            lp = sc.extra.get("low_precision", {})
            quantized = low_precision.quantize(self._module, sc.precision,
                                               [*sc.extra.get("keep_layers", []), *lp.get("left_alone", {})])
            inductor_patch = low_precision.INDUCTOR_PATCH.get(sc.precision, {})
            self._info.update(quantized_layers=len(quantized), torchao=low_precision.torchao_version(),
                              inductor_patch=inductor_patch)
        if self.mode == "compile":
            compile_mode = sc.extra.get("compile_mode", "default")
            folder = compile_cache.cache_dir(sc.extra.get("compile_cache_dir"), sc.device_slug, compiled_versions(sc),
                                             compile_recipe(sc))
            compile_cache.use(folder)  # before the first compile in this process: Inductor and Triton read it then
            cache_before = compile_cache.counts()
            freezing = bool(sc.extra.get("compile_freezing"))
            fn = torch.compile(self._module, mode=compile_mode)
            self._info.update(compile_mode=compile_mode, compile_freezing=freezing)
            self._info["compile_cache"] = {"dir": str(folder)}
        self._fn = fn
        self._graphs: dict[int, tuple] = {}
        self._host_out: list = []  # launch_indices' two sets of page-locked output buffers
        self._turn = 0
        if self.mode in GRAPH_MODES:
            import torch._inductor.config as inductor_config
            from torch._dynamo.utils import counters

            self._sizes = buckets(self.max_batch)
            t_capture = time.perf_counter()
            graphs_before = counters["stats"]["unique_graphs"]
            # Inductor reads freezing when the warm-up compiles; patched, not set, so it does not outlive this load
            with inductor_config.patch(freezing=bool(sc.extra.get("compile_freezing")), **inductor_patch):
                self._capture()
            self._info["graph_buckets"] = self._sizes
            self._allocate_host_outputs()
            if self.mode == "compile":  # 0: Dynamo reused code compiled earlier in this process, whatever its recipe
                self._info["graphs_compiled"] = counters["stats"]["unique_graphs"] - graphs_before
            if cache_before is not None:  # compiling happens in the warm-up before each capture
                after = compile_cache.counts()
                self._info["compile_cache"].update(
                    outcome=compile_cache.outcome(cache_before, after), compile_and_capture_seconds=round(
                        time.perf_counter() - t_capture, 3), **{k: after[k] - cache_before[k] for k in after})
        self._info["load_seconds"] = round(time.perf_counter() - t0, 3)

    def _no_grad(self):
        """Inference mode, except for torchao's tensors: compiled under inference mode, the FP8 engine stopped at
        aten.as_strided, which torchao's Float8Tensor does not implement (one H100, 2026-12-07); no_grad, which
        creates no inference tensors, is used for them instead (not yet seen on a GPU to clear that error)."""
        import torch

        return torch.no_grad() if self.precision in low_precision.LOW_PRECISIONS else torch.inference_mode()

    def _to_engine(self, name: str, t):
        """An input tensor in the engine's dtype (float inputs only: token ids stay integers) and layout."""
        import torch

        if t.is_floating_point() and t.dtype != self._dtype:
            t = t.to(self._dtype)
        if self._channels_last and t.ndim == 4 and t.is_floating_point():
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _capture(self) -> None:
        """Warm up (compiling, for compile mode) and capture one graph per bucket, each with its own
        static input and output buffers and its own memory pool (buckets replay in any order)."""
        import torch

        shapes = self.io.sample_shapes()
        stream = torch.cuda.Stream()
        with self._no_grad():
            for b in capture_order(self._sizes):
                static_in = [self._to_engine(i.name, torch.zeros((b, *shapes[i.name]), device="cuda",
                                                                  dtype=getattr(torch, i.dtype)))
                             for i in self.io.inputs]
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(WARMUP_BEFORE_CAPTURE):
                        self._fn(*static_in)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    static_out = self._fn(*static_in)
                self._graphs[b] = (graph, static_in, static_out)
        torch.cuda.synchronize()

    def host_buffer(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """Page-locked host memory on CUDA, so input copies go straight to the device."""
        if self.device != "cuda":
            return super().host_buffer(shape, dtype)
        return pinned_array(shape, dtype, self._pinned)

    def load_samples(self, samples: Feed) -> None:
        """On CUDA the samples live in device memory, in the engine's dtype and layout (cuda_io)."""
        if self.device != "cuda":
            return super().load_samples(samples)
        import torch

        self._dev_samples = {
            k: DeviceSamples(v, self._dtype if np.issubdtype(v.dtype, np.floating) else getattr(torch, v.dtype.name),
                             self.max_batch, self._channels_last and v.ndim == 4)
            for k, v in samples.items()}

    def _run(self, batch: list, n: int, non_blocking: bool = False) -> list[np.ndarray]:
        """Run device (or host, on CPU) tensors of `n` rows, through a captured graph where there is one."""
        if self._graphs:
            graph, static_in, static_out = self._graphs[bucket_for(n, self._sizes)]
            for dst, src in zip(static_in, batch, strict=True):
                dst[:n].copy_(src, non_blocking=non_blocking)  # rows past n keep old data: rows are independent
            graph.replay()
            return [o[:n].float().cpu().numpy() for o in static_out]
        return [o.float().cpu().numpy() for o in self._fn(*batch)]

    def infer_indices(self, idx: np.ndarray) -> list[np.ndarray]:
        if self.device != "cuda":
            return super().infer_indices(idx)

        with self._no_grad():
            return self._run([self._dev_samples[i.name].gather(idx) for i in self.io.inputs], len(idx))

    @property
    def inflight(self) -> int:
        """Two batches at once where graphs run them: the next is launched while the last one's outputs copy."""
        return 2 if self._graphs and self.device == "cuda" else 1

    def _allocate_host_outputs(self) -> None:
        """launch_indices' two sets of page-locked float32 output buffers and their events, allocated at load so
        no first measured batch pays for them (the largest bucket's outputs give the shapes)."""
        import torch

        outs = self._graphs[self._sizes[-1]][2]
        self._host_out = [[torch.empty((self.max_batch, *o.shape[1:]), dtype=torch.float32, pin_memory=True)
                           for o in outs] for _ in range(2)]
        self._done_events = [torch.cuda.Event(), torch.cuda.Event()]

    def launch_indices(self, idx: np.ndarray):
        """Gather, replay and copy the outputs to page-locked host buffers, all queued on the stream; the
        returned function waits for this batch's copy. Two sets of host buffers, used in turn (`inflight`)."""
        if self.inflight == 1:
            return super().launch_indices(idx)

        n = len(idx)
        with self._no_grad():
            graph, static_in, static_out = self._graphs[bucket_for(n, self._sizes)]
            for dst, i in zip(static_in, self.io.inputs, strict=True):
                dst[:n].copy_(self._dev_samples[i.name].gather(idx))
            graph.replay()
            self._turn ^= 1
            host, done = self._host_out[self._turn], self._done_events[self._turn]
            for h, o in zip(host, static_out, strict=True):
                h[:n].copy_(o[:n], non_blocking=True)  # queued before the next replay overwrites static_out
            done.record()

        def collect() -> list[np.ndarray]:
            done.synchronize()
            return [h[:n].numpy() for h in host]
        return collect

    def infer(self, x: Feed) -> list[np.ndarray]:
        import torch

        with self._no_grad():
            src = [torch.from_numpy(np.asarray(x[i.name])) for i in self.io.inputs]
            n = len(src[0])
            if self._graphs:
                return self._run(src, n, non_blocking=True)
            return self._run([self._to_engine(i.name, t.to(self.device, non_blocking=True))
                              for i, t in zip(self.io.inputs, src, strict=True)], n)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def memory(self) -> dict[str, Any]:
        if self.device != "cuda":
            return {}
        import torch

        out: dict[str, Any] = {"gpu_peak_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                               "gpu_allocated_mb": round(torch.cuda.memory_allocated() / 2**20, 1),
                               "gpu_reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1),
                               "gpu_weights_mb": round(weight_bytes(self._module) / 2**20, 1)}
        out["nvml_process_used_mb"] = nvml_process_memory_mb()
        return out

    def close(self) -> None:
        self._graphs.clear()
        self._host_out = []
        self._pinned.clear()
        self._dev_samples = None


def weight_bytes(module) -> int:
    """Bytes of the module's parameters and buffers as stored: a torchao tensor counts its quantized data and
    scales (the tensors it is made of), not the size of the dtype it stands for."""
    import torch

    def size(t) -> int:
        if type(t) is torch.Tensor or type(t) is torch.nn.Parameter:
            return t.numel() * t.element_size()
        if hasattr(t, "__tensor_flatten__"):
            names, _ = t.__tensor_flatten__()
            return sum(size(getattr(t, n)) for n in names)
        return t.numel() * t.element_size()

    seen: set[int] = set()
    total = 0
    for t in [*module.parameters(), *module.buffers()]:
        data = t.data if isinstance(t, torch.nn.Parameter) and type(t.data) is not torch.Tensor else t
        if id(data) not in seen:
            seen.add(id(data))
            total += size(data)
    return total


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


def compile_recipe(sc: Sidecar) -> dict[str, Any]:
    """What decides the compiled code, as the compile cache's key: model and weights, precision, mode, shapes."""
    return {"model_spec": sc.extra.get("model_spec"), "weights_sha256": sc.source_sha256, "precision": sc.precision,
            "compile_mode": sc.extra.get("compile_mode", "default"), "channels_last": sc.extra.get("channels_last"),
            "buckets": buckets(sc.input_profile["max_batch"]), "io": sc.input_profile["io"],
            # the order decides which batch the dynamic graph is compiled (and autotuned) at, which the FX graph
            # cache's key does not see: a cache compiled in ascending order must not be read for this one
            "capture_order": capture_order(buckets(sc.input_profile["max_batch"])),
            # only when on: freezing off adds nothing to the key
            **({"compile_freezing": True} if sc.extra.get("compile_freezing") else {}),
            # torchao's precisions: its version and the layers kept in 16 bits decide the quantized graph
            **({"torchao": sc.extra["low_precision"].get("torchao"), "keep_layers": sc.extra.get("keep_layers", [])}
               if sc.precision in low_precision.LOW_PRECISIONS else {})}


def supported(device: str) -> dict[str, set[str]]:
    """precision -> modes this backend builds on `device`."""
    if device == "cuda":  # torchao's precisions compile only: eager, its quantized tensors are slower than FP16
        return {**{p: {"eager", "cuda_graph", "compile"} for p in DTYPES},
                **{p: {"compile"} for p in low_precision.LOW_PRECISIONS}}
    return {"fp32": {"eager"}}


def build_engine(job: BuildJob) -> Path:
    return build(job.inputs, job.precision, job.store, job.inputs.model_spec, mode=job.mode,
                 compile_mode=job.params.compile_mode.value, compile_cache_dir=job.params.compile_cache_dir,
                 compile_freezing=job.params.compile_freezing, keep_layers=job.params.lowp_keep_layers)


def build_record(sc: Sidecar) -> dict:
    """torchao's precisions: which layers each quantized and their share of the FLOPs; else nothing (build.json's
    common fields say it all)."""
    return {"low_precision": sc.extra["low_precision"]} if "low_precision" in sc.extra else {}


def build(inputs: BuildInputs, precision: str, store: Path, source_label: str, mode: str = "eager",
          compile_mode: str = "default", compile_cache_dir: str = "", compile_freezing: bool = False,
          keep_layers: list[str] | tuple[str, ...] = ()) -> Path:
    """Store the model's weights as the engine, with the recipe (precision, mode) that loads it; for torchao's
    precisions, refused where this machine cannot run them (EngineSkipped, the build stage records why), and what
    they quantize accounted for."""
    from safetensors.torch import save_file

    from ..zoo import load_model

    device = current_device()
    here = "cuda" if device["compute_capability"] else "cpu"
    why = low_precision.refusal(precision, device["compute_capability"], device.get("device_name", ""))
    if why:
        raise EngineSkipped(why)
    if mode not in supported(here).get(precision, set()):
        if precision in low_precision.LOW_PRECISIONS:
            raise EngineSkipped(f"torch {precision} is built in compile mode only (torch_modes: [compile]); "
                                f"{mode} is not")
        raise ParamsError(f"torch backend on {here} does not build {precision} {mode}")
    name = f"{NAME}-{precision}" + ("" if mode == "eager" else f"-{mode}")
    t0 = time.perf_counter()
    io = inputs.io
    bundle = load_model(inputs.model_spec, inputs=io.inputs, outputs=io.outputs, dims=io.dims, weights=inputs.weights,
                        weights_strict=inputs.weights_strict, weights_ignore=inputs.weights_ignore)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in bundle.module.state_dict().items()}, str(out))
        extra = {"model_spec": inputs.model_spec, "mode": mode, "channels_last": here == "cuda" and precision != "fp32"}
        if mode == "compile":
            extra.update(compile_mode=compile_mode, compile_cache_dir=compile_cache_dir, compile_freezing=compile_freezing)
        if precision in low_precision.LOW_PRECISIONS:
            extra.update(keep_layers=list(keep_layers),
                         low_precision=low_precision_record(bundle.module, io, precision, keep_layers, here))
        sc = Sidecar(
            name=name, backend=NAME, backend_version=version(), precision=precision, **device,
            input_profile=inputs.profile(),
            source=source_label, source_sha256=sha256_file(out), engine_file=out.name,
            build_seconds=round(time.perf_counter() - t0, 3), extra=extra,
        )
        return save_engine(store, sc, out)


def low_precision_record(module, io: ModelIO, precision: str, keep_layers, device: str) -> dict[str, Any]:
    """Quantize a copy of the model as the engine will be at load, on this device, and account for what it took:
    the layers torchao quantized and their share of one sample's FLOPs (counted on the FP32 model)."""
    import copy

    import torch

    example = tuple(torch.from_numpy(v) for v in io.synthetic(1, np.random.default_rng(0)).values())
    flops = low_precision.layer_flops(module.eval(), example)  # FP32 on the host: counting needs no GPU
    left = low_precision.left_alone(module, precision, flops["rows_per_sample"])
    trial = copy.deepcopy(module).eval().to(device, getattr(torch, low_precision.BASE_DTYPE))
    quantized = low_precision.quantize(trial, precision, [*keep_layers, *left])
    del trial
    return low_precision.account(flops, quantized, list(keep_layers), precision, left)


def load(sidecar_path: Path, threads: int = 0, source_sha256: str | None = None) -> TorchEngine:
    from safetensors.torch import load_file

    from ..zoo import load_model

    sc, path = check_engine(sidecar_path, version(), source_sha256)
    io = ModelIO.model_validate(sc.input_profile["io"])
    bundle = load_model(sc.extra["model_spec"], inputs=io.inputs, outputs=io.outputs, dims=io.dims)
    bundle.module.load_state_dict(load_file(str(path)))  # the stored weights, the user's included
    return TorchEngine(bundle.module, sc, threads)


def torchscript(sidecar_path: Path, source_sha256: str, example: Feed, out: Path) -> dict[str, Any]:
    """The engine's model as a TorchScript program for Triton's PyTorch backend (LibTorch), written to `out`.

    Inputs and outputs keep the ONNX model's dtypes (float inputs are cast to the engine's precision inside
    the program, outputs come back as float32), positional, as the backend's INPUT__i / OUTPUT__i names
    expect. A compile-mode engine is traced from the same eager module: the backend runs TorchScript, not
    Inductor's kernels. Traced on the device the engine was built for; checked after saving on a batch size
    other than the traced one (a trace that baked in its batch size fails here)."""
    import torch
    from safetensors.torch import load_file

    from ..zoo import load_model

    sc, path = check_engine(sidecar_path, version(), source_sha256)
    device = "cuda" if sc.compute_capability else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ParamsError(f"{sc.name} was built for a CUDA GPU; trace it for Triton on a machine with one")
    io = ModelIO.model_validate(sc.input_profile["io"])
    bundle = load_model(sc.extra["model_spec"], inputs=io.inputs, outputs=io.outputs, dims=io.dims)
    bundle.module.load_state_dict(load_file(str(path)))
    if sc.precision not in DTYPES:
        raise ParamsError(f"{sc.name}: Triton's PyTorch backend runs TorchScript, which cannot hold torchao's "
                          f"{sc.precision} tensors; serve an fp16 or bf16 engine of this run instead")
    dtype = getattr(torch, DTYPES[sc.precision])

    class TorchScriptIO(torch.nn.Module):
        """Float inputs cast to the engine's dtype, every output returned as float32, as a tuple."""

        def __init__(self, module) -> None:
            super().__init__()
            self.module = module

        def forward(self, *xs):
            ys = self.module(*[x.to(dtype) if x.is_floating_point() else x for x in xs])
            return tuple(y.float() for y in ys)

    served = TorchScriptIO(bundle.module.eval().to(device, dtype)).eval()

    def tensors(n: int) -> tuple:
        return tuple(torch.from_numpy(np.ascontiguousarray(np.resize(example[i.name], (n, *example[i.name].shape[1:]))))
                     .to(device) for i in io.inputs)

    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(served, tensors(2), check_trace=False)
        traced.save(str(out))
        check = tensors(3)
        want = [t.cpu().numpy() for t in served(*check)]
        got = [t.cpu().numpy() for t in torch.jit.load(str(out), map_location=device)(*check)]
    diff = max(float(np.max(np.abs(g.astype(np.float64) - w))) for g, w in zip(got, want, strict=True))
    tol = 1e-5 if sc.precision == "fp32" else 1e-2
    if not all(np.allclose(g, w, rtol=tol, atol=tol) for g, w in zip(got, want, strict=True)):
        raise ArtifactError(f"{sc.name}: the TorchScript program answers a batch of 3 unlike the module "
                            f"(max |diff| {diff:.3g}); this model does not trace to a batch-independent program")
    return {"device": device, "precision": sc.precision, "checked_batch": 3, "max_abs_diff": diff,
            "inputs": [i.name for i in io.inputs], "outputs": list(io.outputs)}
