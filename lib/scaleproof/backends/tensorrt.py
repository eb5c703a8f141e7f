"""TensorRT backend (10.x and 11.x): engines per GPU type from the run's ONNX artifacts.

Build: parse the ONNX file of the precision asked for (FP32, FP16 model, INT8 Q/DQ model) into a
strongly typed network, one optimization profile for the batch range, workspace through
`set_memory_pool_limit`, the shared timing cache of this GPU type and TensorRT version, detailed
profiling verbosity so the engine inspector lists the fused layers. On 10.x a failed strongly typed
build may fall back to the FP16/INT8 builder flags (recorded). The serialized engine goes into the
per-device store with its sidecar; loading checks the sidecar and hash before deserializing.

Runtime: device buffers for the largest batch allocated once (through torch, which the project
already needs), tensor addresses set once, `set_input_shape` per batch, `execute_async_v3` on the
engine's own stream, and optionally one CUDA graph per batch bucket, each captured from its own
execution context (the contexts share one activation block from 10.1 on). Device memory, streams and
graphs come through `CUDA`, the seam the GPU-free tests replace.
"""

from __future__ import annotations

import collections
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine_store import Sidecar, check_engine, current_device, save_engine
from ..errors import ArtifactError, EngineMismatchError
from ..io_spec import Feed, ModelIO
from ..onnx_io import io_from_onnx, load_onnx_checked
from ..provenance import sha256_file
from .base import BuildInputs, BuildJob, Engine, EngineSkipped
from .cuda_io import DeviceSamples, pinned_array
from .torch import bucket_for, buckets, nvml_process_memory_mb
from .trt_api import (
    PrecisionPlan,
    TrtApi,
    TrtOptions,
    parser_error_text,
    precision_plan,
    summarize_layers,
)
from .trt_timing_cache import TimingCacheFile

logger = logging.getLogger(__name__)

NAME = "tensorrt"


class BuildFailed(ArtifactError):
    pass


class TrtCallFailed(RuntimeError):
    """A TensorRT call reported failure (False or None; the bindings do not raise)."""


def version() -> str:
    import tensorrt

    return tensorrt.__version__


_LOG: tuple[Any, Any] | None = None  # (tensorrt module, its logger)


def _logger(trt):
    """The process's one TensorRT logger: TensorRT keeps the first logger a builder or runtime is given
    (nvinfer1::getLogger()) and ignores later ones, so a logger per call would never hear its call's errors.
    It keeps recent errors so each failed call can say why (`since`)."""
    global _LOG
    if _LOG is not None and _LOG[0] is trt:  # a new module object only in tests that swap stand-ins
        return _LOG[1]

    class Keeping(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.recent: collections.deque[str] = collections.deque(maxlen=64)
            self.count = 0  # errors logged so far: a call's mark

        def log(self, severity, msg) -> None:
            if int(severity) <= int(trt.ILogger.Severity.ERROR):  # pybind enums compare reliably as ints
                self.recent.append(str(msg))
                self.count += 1
                # stderr, as TensorRT's own: the stage's stderr log is what a crash report quotes
                print(f"[tensorrt] ERROR: {msg}", file=sys.stderr, flush=True)
            elif int(severity) == int(trt.ILogger.Severity.WARNING):
                logger.warning(f"TensorRT: {msg}")

        def since(self, mark: int) -> list[str]:
            n = min(self.count - mark, len(self.recent))
            return list(self.recent)[len(self.recent) - n:]

    _LOG = (trt, Keeping())
    return _LOG[1]


def _call(log, what: str, fn, *args):
    """`fn(*args)`, raising with the errors TensorRT logged during it where it returns False or None."""
    mark = log.count
    out = fn(*args)
    if out is False or out is None:
        raise TrtCallFailed(f"TensorRT {what} failed: {'; '.join(log.since(mark)) or 'no error logged'}")
    return out


def _deserialize(trt, log, data: bytes, version_compatible: bool):
    """(runtime, engine or None, errors logged). A version-compatible plan carries its lean runtime as host
    code, which TensorRT refuses to load (returns None) unless `engine_host_code_allowed` is set first."""
    runtime = trt.Runtime(log)
    if version_compatible:
        runtime.engine_host_code_allowed = True
    mark = log.count
    engine = runtime.deserialize_cuda_engine(data)
    return runtime, engine, log.since(mark)


def _build_serialized(trt, api: TrtApi, plan: PrecisionPlan, onnx_path: Path, inputs: BuildInputs,
                      opts: TrtOptions, cache: TimingCacheFile, hardware_level) -> tuple[bytes, dict[str, Any]]:
    log = _logger(trt)
    mark = log.count
    builder = trt.Builder(log)
    network = builder.create_network(api.network_flags(trt, plan.strongly_typed))
    parser = trt.OnnxParser(network, log)
    load_onnx_checked(onnx_path, load_external=False)  # refuses external data outside the model folder
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser_error_text(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildFailed(f"TensorRT {api.version} could not parse {onnx_path.name}: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    config.builder_optimization_level = opts.opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    config.hardware_compatibility_level = hardware_level
    if opts.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    # the profile must agree with every static dimension of the parsed network, or every build fails
    net = {t.name: tuple(t.shape) for t in (network.get_input(i) for i in range(network.num_inputs))}
    if sorted(net) != sorted(inputs.io.input_names):
        raise ArtifactError(f"{onnx_path.name} has inputs {sorted(net)}, the model's input spec "
                            f"{inputs.io.input_names}")
    profile = builder.create_optimization_profile()
    shapes = {}
    for name, shape in inputs.io.sample_shapes().items():
        shapes[name] = opts.profile_for(name, net[name], shape)
        profile.set_shape(name, *shapes[name])
    if config.add_optimization_profile(profile) < 0:
        raise BuildFailed(f"TensorRT {api.version} refused the optimization profile {shapes}: "
                          + "; ".join(log.since(mark)))
    cache_status = cache.attach(config)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise BuildFailed(f"TensorRT {api.version} build of {onnx_path.name} failed ({plan.typing}): "
                          + ("; ".join(log.since(mark)[-5:]) or "build_serialized_network returned None"))
    cache.save(config)
    _runtime, engine, errors = _deserialize(trt, log, serialized, opts.version_compatible)
    if engine is None:  # not BuildFailed: weak typing would not deserialize either
        raise ArtifactError(f"TensorRT {api.version} built {onnx_path.name} but cannot deserialize the engine: "
                            + ("; ".join(errors) or "no reason given"))
    inspector = engine.create_engine_inspector()
    layers = summarize_layers(inspector.get_engine_information(trt.LayerInformationFormat.JSON),
                              onnx_nodes=len(load_onnx_checked(onnx_path, load_external=False).graph.node))
    layers["network_layers"] = network.num_layers
    info = {"typing": plan.typing, "builder_flags": list(plan.builder_flags), "strongly_typed": plan.strongly_typed,
            "profile": {n: {"min": list(lo), "opt": list(opt), "max": list(hi)} for n, (lo, opt, hi) in shapes.items()},
            "workspace_mb": opts.workspace_mb,
            "opt_level": opts.opt_level, "hardware_compat": opts.hardware_compat,
            "version_compatible": opts.version_compatible, "timing_cache": cache_status,
            "build_seconds_tensorrt": round(seconds, 3), "layers": layers,
            "device_memory_bytes": api.device_memory_bytes(engine)}
    return bytes(serialized), info


def supported(device: str) -> dict[str, set[str]]:
    """precision -> modes built on `device`: CUDA GPUs only."""
    return {"fp32": {""}, "fp16": {""}, "int8": {""}} if device == "cuda" else {}


def trt_options(params) -> TrtOptions:
    """The builder options a run's parameters ask for."""
    return TrtOptions(
        workspace_mb=params.trt_workspace_mb, min_batch=params.trt_min_batch,
        opt_batch=params.trt_opt_batch or params.batcher_max_batch, max_batch=params.max_batch,
        opt_level=params.trt_opt_level, hardware_compat=params.trt_hardware_compat.value,
        version_compatible=params.trt_version_compatible, weak_typing_fallback=params.trt_weak_typing_fallback,
        cuda_graph=params.trt_cuda_graph, timing_cache_dir=params.trt_timing_cache_dir,
    )


def build_engine(job: BuildJob) -> Path:
    if job.precision == "int8" and job.int8_dynamic:
        raise EngineSkipped("the INT8 model is dynamic INT8 (not Q/DQ): TensorRT cannot build it; "
                            "use quant_scope all or matmul")
    return build(job.inputs, job.precision, job.store, "", options=trt_options(job.params))


def build_record(sc: Sidecar) -> dict:
    """Precision typing, layers, timing cache and profile, kept in build.json."""
    return {"tensorrt": {k: sc.extra[k] for k in ("typing", "layers", "timing_cache", "profile") if k in sc.extra}}


def build(inputs: BuildInputs, precision: str, store: Path, source_label: str,
          options: TrtOptions | None = None) -> Path:
    """Build the engine of `precision` for this GPU into the store; returns the sidecar path."""
    import tensorrt as trt

    opts = options or TrtOptions(max_batch=inputs.max_batch)
    api = TrtApi.from_version(trt.__version__)
    device = current_device()
    hardware_level = api.hardware_compat_level(trt, opts.hardware_compat, device["compute_capability"])
    artifacts = set(inputs.onnx_by_precision)
    cache = TimingCacheFile(Path(opts.timing_cache_dir) if opts.timing_cache_dir else Path(store) / device["device_slug"],
                            api.version, device["device_slug"], device["compute_capability"])
    plan = precision_plan(api, precision, artifacts)
    t0 = time.perf_counter()
    try:
        data, info = _build_serialized(trt, api, plan, Path(inputs.onnx_by_precision[plan.onnx]), inputs, opts, cache,
                                       hardware_level)
    except BuildFailed as e:
        if not (api.weak_typing_available and opts.weak_typing_fallback and precision != "fp32"):
            raise
        plan = precision_plan(api, precision, artifacts, weak=True)
        logger.warning(f"{e}; retrying with {plan.typing}")
        data, info = _build_serialized(trt, api, plan, Path(inputs.onnx_by_precision[plan.onnx]), inputs, opts, cache,
                                       hardware_level)
        info["fallback_reason"] = str(e)
    src = Path(inputs.onnx_by_precision[plan.onnx])
    name = f"{NAME}-{precision}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.engine"
        out.write_bytes(data)
        sc = Sidecar(
            name=name, backend=NAME, backend_version=api.version, precision=precision, **device,
            input_profile={**inputs.profile(opts.min_batch), "max_batch": opts.max_batch},
            source=source_label or f"{src.parent.name}/{src.name}",
            source_sha256=sha256_file(src), engine_file=out.name, build_seconds=round(time.perf_counter() - t0, 3),
            extra={**info, "cuda_graph": opts.cuda_graph},
        )
        return save_engine(store, sc, out)


class CudaTorch:
    """Device memory, streams and CUDA graphs for TrtEngine, through torch (which the project needs anyway).
    The one seam tests replace (`CUDA = tests.fake_tensorrt.CpuCuda(...)`), so the engine's own logic
    (buffers, shapes, buckets, graph fallback) runs without a GPU."""

    def tensor(self, shape, dtype):
        import torch

        return torch.zeros(shape, dtype=dtype, device="cuda")

    def host(self, shape, dtype):
        import torch

        return torch.empty(shape, dtype=dtype, pin_memory=True)

    def stream(self):
        import torch

        return torch.cuda.Stream()

    def on(self, stream):
        import torch

        return torch.cuda.stream(stream)

    def graph(self):
        import torch

        return torch.cuda.CUDAGraph()

    def capture(self, graph, stream):
        import torch

        return torch.cuda.graph(graph, stream=stream)

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()

    def free_bytes(self) -> int:
        import torch

        return torch.cuda.mem_get_info()[0]

    def peak_allocated(self) -> int:
        import torch

        return torch.cuda.max_memory_allocated()

    def process_used_mb(self) -> float | None:
        return nvml_process_memory_mb()

    def samples(self, samples: np.ndarray, dtype, max_batch: int) -> DeviceSamples:
        return DeviceSamples(samples, dtype, max_batch)


CUDA: Any = CudaTorch()


class _CaptureFailed(RuntimeError):
    pass


class TrtEngine(Engine):
    backend = NAME
    device = "cuda"

    def __init__(self, path: Path, sc: Sidecar) -> None:
        import tensorrt as trt
        import torch

        t0 = time.perf_counter()
        self.name, self.precision = sc.name, sc.precision
        self.max_batch = sc.input_profile["max_batch"]
        self._min_batch = sc.input_profile.get("min_batch", 1)
        api = TrtApi.from_version(trt.__version__)
        self._log = log = _logger(trt)
        free_before = CUDA.free_bytes()
        self._runtime, self._engine, errors = _deserialize(trt, log, path.read_bytes(),
                                                           bool(sc.extra.get("version_compatible")))
        if self._engine is None:  # TensorRT returns None on a version/device mismatch rather than raising
            raise EngineMismatchError(f"TensorRT {api.version} could not deserialize {path.name} "
                                      f"({'; '.join(errors[-3:]) or 'no reason given'}); rebuild it here with "
                                      f"stage 03_build or `scaleproof build-engine`")
        self.io = ModelIO.model_validate(sc.input_profile["io"])
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        ins = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if sorted(ins) != sorted(self.io.input_names) or sorted(outs) != sorted(self.io.outputs):
            raise ArtifactError(f"engine {sc.name} has inputs {ins} and outputs {outs}, its sidecar declares "
                                f"{self.io.input_names} and {self.io.outputs}; rebuild it with stage 03_build")
        self._outs = list(self.io.outputs)  # returned in the model's output order, not the engine's
        self._shapes = self.io.sample_shapes()
        self._sizes = [b for b in buckets(self.max_batch) if b >= self._min_batch]
        # With CUDA graphs, one context per bucket: a graph replays the shapes it was captured with, so its
        # context's shapes must never change afterwards (TensorRT: recapture after a shape change). From
        # 10.1 the contexts share one activation block (they never run at once: one stream); on 10.0 each
        # allocates its own.
        graphs = bool(sc.extra.get("cuda_graph"))
        shared = graphs and api.user_managed_memory
        strategy = trt.ExecutionContextAllocationStrategy
        self._contexts = {b: _call(log, "create_execution_context", self._engine.create_execution_context,
                                   strategy.USER_MANAGED if shared else strategy.STATIC)
                          for b in (self._sizes if graphs else [self.max_batch])}
        self._trt_own = max(0, free_before - CUDA.free_bytes())  # weights, STATIC activations, TensorRT's own
        self._activation = api.device_memory_bytes(self._engine)
        self._ctx = self._contexts[self.max_batch]  # runs exact batch sizes when there are no graphs
        self._scratch = CUDA.tensor((max(self._activation, 1),), torch.uint8) if shared else None
        dtypes = torch_dtypes(trt)
        self._stream = CUDA.stream()
        # buffers for the largest batch, allocated once and shared by every context; a smaller batch
        # uses their leading rows
        self._d_in = {n: CUDA.tensor((self.max_batch, *self._shapes[n]), dtypes[self._engine.get_tensor_dtype(n)])
                      for n in self.io.input_names}
        for b, ctx in self._contexts.items():
            if shared:
                ctx.set_device_memory(self._scratch.data_ptr(), self._activation)
            for n, buf in self._d_in.items():
                _call(log, f"set_input_shape({n!r}, {(b, *self._shapes[n])})", ctx.set_input_shape, n,
                      (b, *self._shapes[n]))
                _call(log, f"set_tensor_address({n!r})", ctx.set_tensor_address, n, buf.data_ptr())
        self._d_out, self._h_out = [], []
        for n in self._outs:
            shape = tuple(self._ctx.get_tensor_shape(n))
            d = CUDA.tensor(shape, dtypes[self._engine.get_tensor_dtype(n)])
            self._d_out.append(d)
            self._h_out.append(CUDA.host(shape, torch.float32 if d.is_floating_point() else d.dtype))
            for ctx in self._contexts.values():
                _call(log, f"set_tensor_address({n!r})", ctx.set_tensor_address, n, d.data_ptr())
        self._current = self.max_batch
        self._pinned: list = []  # host buffers handed out; kept alive with the engine
        self._graphs: dict[int, Any] = {}
        self._graph_fallback = None
        if graphs:
            self._capture()
        self._info = {"typing": sc.extra.get("typing"), "cuda_graph": bool(self._graphs),
                      "graph_buckets": sorted(self._graphs), "execution_contexts": len(self._contexts),
                      "shared_device_memory": shared, "load_seconds": round(time.perf_counter() - t0, 3),
                      "engine_layers": sc.extra.get("layers", {}).get("engine_layers"),
                      **({"cuda_graph_fallback": self._graph_fallback} if self._graph_fallback else {})}

    def _set_batch(self, b: int) -> None:
        if b != self._current:
            for n in self.io.input_names:
                shape = (b, *self._shapes[n])
                _call(self._log, f"set_input_shape({n!r}, {shape})", self._ctx.set_input_shape, n, shape)
            self._current = b

    def _capture(self) -> None:
        """One CUDA graph per bucket, each from its own context run once first (TensorRT defers some work
        to the first enqueue after a shape change). An enqueue that fails under capture (the engine holds
        operations capture does not permit) drops the graphs for plain enqueues, as trtexec does."""
        handle = self._stream.cuda_stream
        for b, ctx in self._contexts.items():
            _call(self._log, f"execute_async_v3 (batch {b})", ctx.execute_async_v3, handle)
        self._stream.synchronize()
        try:
            for b, ctx in self._contexts.items():
                graph, mark = CUDA.graph(), self._log.count
                with CUDA.capture(graph, self._stream):
                    if not ctx.execute_async_v3(handle):
                        raise _CaptureFailed(f"execute_async_v3 (batch {b}) failed under CUDA graph capture: "
                                             + ("; ".join(self._log.since(mark)) or "no error logged"))
                self._graphs[b] = graph
        except RuntimeError as e:  # _CaptureFailed, or the capture's end reporting the invalidated capture
            self._graphs.clear()
            self._contexts = {self.max_batch: self._ctx}
            self._graph_fallback = str(e)
            logger.warning(f"{self.name}: no CUDA graphs, plain execute_async_v3 instead ({e})")
        CUDA.synchronize()

    def _run(self, n: int) -> list[np.ndarray]:
        with CUDA.on(self._stream):
            if self._graphs:
                self._graphs[bucket_for(max(n, self._min_batch), self._sizes)].replay()
            else:
                self._set_batch(max(n, self._min_batch))
                _call(self._log, "execute_async_v3", self._ctx.execute_async_v3, self._stream.cuda_stream)
            for h, d in zip(self._h_out, self._d_out, strict=True):
                h[:n].copy_(d[:n], non_blocking=True)
        self._stream.synchronize()
        return [h[:n].numpy().copy() for h in self._h_out]

    def infer(self, x: Feed) -> list[np.ndarray]:
        import torch

        n = len(x[self.io.input_names[0]])
        with CUDA.on(self._stream):
            for name, buf in self._d_in.items():
                buf[:n].copy_(torch.from_numpy(np.asarray(x[name])), non_blocking=True)
        return self._run(n)

    def load_samples(self, samples: Feed) -> None:
        """Samples live in device memory; a batch is gathered there by index (cuda_io, as for torch)."""
        self._dev_samples = {n: CUDA.samples(samples[n], self._d_in[n].dtype, self.max_batch) for n in self._d_in}

    def infer_indices(self, idx: np.ndarray) -> list[np.ndarray]:
        n = len(idx)
        with CUDA.on(self._stream):
            for name, buf in self._d_in.items():
                self._dev_samples[name].gather(idx, out=buf[:n])
        return self._run(n)

    def host_buffer(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        return pinned_array(shape, dtype, self._pinned)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def memory(self) -> dict[str, Any]:
        """GPU memory of this engine: PyTorch's peak (buffers, samples, the shared activation block) plus
        what TensorRT allocated itself while loading (weights, STATIC activations), read as the drop in
        free device memory, so another process allocating meanwhile would be counted too."""
        peak = CUDA.peak_allocated()
        return {"gpu_peak_allocated_mb": round((peak + self._trt_own) / 2**20, 1),
                "torch_peak_allocated_mb": round(peak / 2**20, 1),
                "tensorrt_own_mb": round(self._trt_own / 2**20, 1),
                "engine_device_memory_mb": round(self._activation / 2**20, 1),
                "nvml_process_used_mb": CUDA.process_used_mb()}

    def close(self) -> None:
        self._graphs.clear()
        self._ctx, self._contexts = None, {}
        self._engine = self._scratch = None
        self._dev_samples = None


def load(sidecar_path: Path, threads: int = 0, source_sha256: str | None = None) -> TrtEngine:
    sc, path = check_engine(sidecar_path, version(), source_sha256)
    return TrtEngine(path, sc)


def torch_dtypes(trt) -> dict:
    """TensorRT I/O tensor types as torch dtypes, mapped from trt.DataType directly (BF16 and FP8 have
    no numpy type, so trt.nptype cannot map them)."""
    import torch

    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
             "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool, "UINT8": torch.uint8,
             "FP8": getattr(torch, "float8_e4m3fn", None)}
    return {getattr(trt.DataType, k): v for k, v in table.items() if hasattr(trt.DataType, k) and v is not None}


def inputs_for_onnx(onnx_path: Path, precision: str, max_batch: int, work_dir: Path,
                    dims: dict[str, int] | None = None) -> BuildInputs:
    """BuildInputs for a lone ONNX file (`scaleproof build-engine`): every input with a dynamic batch axis;
    an FP32 file asked for FP16 is converted to an FP16 model first (TensorRT 11 takes precision from it)."""
    import onnx

    from ..quantization.fp16 import to_fp16

    model = load_onnx_checked(onnx_path, load_external=False)
    io = io_from_onnx(model, dims)  # named dimensions after the batch axis need their sizes in `dims`
    ops = {n.op_type for n in model.graph.node}
    has_fp16 = any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    artifacts = {"fp32": str(onnx_path)}
    if precision == "int8":
        if "QuantizeLinear" not in ops:
            raise ArtifactError(f"{onnx_path.name} has no QuantizeLinear nodes: INT8 needs a Q/DQ model, e.g. a run's "
                                "calibrate/model.int8.onnx (TensorRT 11 has no INT8 calibrator)")
        artifacts = {"int8": str(onnx_path)}
    elif precision == "fp16":
        if has_fp16:
            artifacts = {"fp16": str(onnx_path)}
        else:
            artifacts["fp16"] = str(work_dir / f"{onnx_path.stem}.fp16.onnx")
            to_fp16(onnx_path, Path(artifacts["fp16"]))
    return BuildInputs(model_spec=str(onnx_path), io=io, onnx_by_precision=artifacts, max_batch=max_batch, threads=0)
