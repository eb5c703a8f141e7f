"""A stand-in for the `tensorrt` module that fails where TensorRT fails, so the backend (build path and
`TrtEngine` with its buffers, shapes, buckets and CUDA-graph fallback) runs on a CPU-only machine.

It builds nothing real: a "plan" is JSON naming the network's I/O, its profile and how it was built,
and an "engine" computes `output_k[i] = (k + 1) * sum(row i of every input)` straight from the
buffers at the addresses it was given. `CpuCuda` replaces `tensorrt.CUDA` (torch's device memory,
streams and CUDA graphs) with CPU tensors and a graph that replays what was captured.

Every behaviour encoded here cites its source. Abbreviations:
  [pyCore]  NVIDIA/TensorRT python/src/infer/pyCore.cpp (v10.0-v10.16, v11.0/v11.1)
  [pyGraph] python/src/infer/pyGraph.cpp (INetworkDefinition, ITensor)
  [pyOnnx]  python/src/parsers/pyOnnx.cpp
  [mig11]   TensorRT docs, "Migrating from TensorRT 10.x to 11.x"
  [devguide] TensorRT Developer Guide (sections named where cited)
  [trtexec] samples/common/sampleInference.cpp
  [polygraphy] tools/Polygraphy/polygraphy/backend/trt/loader.py
  [pybind11] pybind11 docs, "Dynamic attributes" (no new attributes without py::dynamic_attr())
Error texts marked (paraphrased) are not TensorRT's exact wording.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import json
from types import SimpleNamespace

import numpy as np


def _enum(name: str, members: dict[str, int]) -> type[enum.IntEnum]:
    return enum.IntEnum(name, members)


class Bound:
    """Like a pybind11-bound TensorRT object [pybind11]: setting an attribute the class does not bind
    raises AttributeError (__slots__), enum-typed properties refuse other types (pybind11 type casters
    raise TypeError), and members bound only in some versions are absent elsewhere (SINCE/UNTIL)."""

    __slots__ = ("trt",)
    SINCE: dict[str, tuple[int, int]] = {}  # attribute -> first (major, minor) that binds it
    UNTIL: dict[str, int] = {}  # attribute -> last major that binds it
    TYPES: dict[str, str] = {}  # attribute -> name of the trt enum it takes

    def __getattribute__(self, name: str):
        cls = type(self)
        if name in cls.SINCE or name in cls.UNTIL:
            v = object.__getattribute__(self, "trt").v
            if v < cls.SINCE.get(name, (0, 0)) or v[0] > cls.UNTIL.get(name, 99):
                raise AttributeError(f"'{cls.__name__}' object has no attribute '{name}' in TensorRT {v[0]}.{v[1]}")
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value) -> None:
        kind = type(self).TYPES.get(name)
        if kind is not None and not isinstance(value, getattr(self.trt, kind)):
            raise TypeError(f"{name}: incompatible type {type(value).__name__}, expected tensorrt.{kind}")
        object.__setattr__(self, name, value)


# data types the fake engines can compute with (BF16/FP8 have no numpy type)
NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
         "BOOL": np.bool_, "UINT8": np.uint8}
ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8", 16: "BF16"}


def memory_at(ptr: int, dtype, shape) -> np.ndarray:
    """The array at a raw address (the engine sees only addresses, as TensorRT does)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.ctypeslib.as_array((ctypes.c_uint8 * n).from_address(ptr)).view(dtype).reshape(shape)


# build ---------------------------------------------------------------------------------------------

class FakeTimingCache:
    def __init__(self, entries: set[str]) -> None:
        self.entries = set(entries)

    def serialize(self) -> bytes:
        return json.dumps(sorted(self.entries)).encode()

    def combine(self, other: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.entries |= other.entries
        return True


class FakeProfile(Bound):
    __slots__ = ("shapes",)

    def __init__(self, trt: FakeTrt) -> None:
        self.trt, self.shapes = trt, {}

    def set_shape(self, input: str, min, opt, max) -> None:  # noqa: A002 - the binding's argument names
        # [pyCore] IOptimizationProfile_set_shape: PY_ASSERT_RUNTIME_ERROR on each setDimensions, which
        # refuses a rank differing from the other selectors or min > opt > max in any dimension
        lo, mid, hi = tuple(min), tuple(opt), tuple(max)
        if not len(lo) == len(mid) == len(hi) or any(not a <= b <= c for a, b, c in zip(lo, mid, hi, strict=True)):
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
        self.shapes[input] = (lo, mid, hi)


class FakeConfig(Bound):
    __slots__ = ("flags", "cache", "pool_limits", "profiles", "builder_optimization_level",
                 "profiling_verbosity", "hardware_compatibility_level")
    TYPES = {"profiling_verbosity": "ProfilingVerbosity", "hardware_compatibility_level": "HardwareCompatibilityLevel"}

    def __init__(self, trt: FakeTrt) -> None:
        self.trt, self.flags, self.cache, self.pool_limits, self.profiles = trt, set(), None, {}, []
        self.builder_optimization_level = 3  # [pyCore] IBuilderConfig defaults
        self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY
        self.hardware_compatibility_level = trt.HardwareCompatibilityLevel.NONE

    def create_timing_cache(self, data: bytes) -> FakeTimingCache:
        if not data:
            return FakeTimingCache(set())
        try:
            return FakeTimingCache(set(json.loads(bytes(data).decode())))
        except (ValueError, UnicodeDecodeError) as e:
            raise RuntimeError(f"invalid timing cache: {e}") from None

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache:
        return self.cache

    def set_memory_pool_limit(self, pool, size: int) -> None:
        self.pool_limits[pool.name] = size

    def set_flag(self, flag) -> None:
        if not isinstance(flag, self.trt.BuilderFlag):
            raise TypeError("set_flag(): incompatible function arguments")
        self.flags.add(flag.name)

    def add_optimization_profile(self, profile: FakeProfile) -> int:
        # addOptimizationProfile returns -1 for an invalid profile ([pyCore] binds it as-is); one with no
        # shapes set is invalid (conservative reading of IOptimizationProfile::isValid)
        if not profile.shapes:
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1


class FakeTensor(Bound):
    __slots__ = ("name", "shape", "dtype")

    def __init__(self, trt: FakeTrt, name: str, shape: tuple[int, ...], dtype) -> None:
        self.trt, self.name, self.shape, self.dtype = trt, name, shape, dtype


class FakeNetwork(Bound):
    __slots__ = ("flags", "num_layers", "inputs", "outputs")

    def __init__(self, trt: FakeTrt, flags: int) -> None:
        self.trt, self.flags, self.num_layers, self.inputs, self.outputs = trt, flags, 0, [], []

    # [pyGraph] INetworkDefinition.num_inputs / get_input(i) / num_outputs / get_output(i); ITensor.shape
    # has -1 for every dimension the ONNX model leaves dynamic ([pyOnnx] parses dim_param as -1)
    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> FakeTensor:
        return self.inputs[i]

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def get_output(self, i: int) -> FakeTensor:
        return self.outputs[i]


class FakeParser(Bound):
    __slots__ = ("network", "num_errors")

    def __init__(self, network: FakeNetwork, logger, trt: FakeTrt) -> None:
        trt.keep_logger(logger)
        self.trt, self.network, self.num_errors = trt, network, 0

    def parse_from_file(self, path: str) -> bool:  # [pyOnnx] parse_from_file returns bool
        import onnx

        self.trt.parsed.append(path)
        if self.trt.parser_errors:
            self.num_errors = len(self.trt.parser_errors)
            return False
        graph = onnx.load(path, load_external_data=False).graph
        inits = {i.name for i in graph.initializer}

        def tensor(v) -> FakeTensor:
            t = v.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
            return FakeTensor(self.trt, v.name, shape, getattr(self.trt.DataType, ONNX_TO_TRT[t.elem_type]))

        self.network.inputs = [tensor(v) for v in graph.input if v.name not in inits]
        self.network.outputs = [tensor(v) for v in graph.output]
        self.network.num_layers = len(graph.node)
        return True

    def get_error(self, i: int):
        return self.trt.parser_errors[i]


class FakeBuilder(Bound):
    __slots__ = ()

    def __init__(self, logger, trt: FakeTrt) -> None:
        trt.keep_logger(logger)
        self.trt = trt

    def create_network(self, flags: int) -> FakeNetwork:
        self.trt.network_flags.append(flags)
        return FakeNetwork(self.trt, flags)

    def create_builder_config(self) -> FakeConfig:
        return FakeConfig(self.trt)

    def create_optimization_profile(self) -> FakeProfile:
        return FakeProfile(self.trt)

    def build_serialized_network(self, network: FakeNetwork, config: FakeConfig):
        """[pyCore] returns IHostMemory, or None with the reason logged (never raises)."""
        trt = self.trt
        strongly = trt.major >= 11 or bool(network.flags & (1 << 5))  # [mig11]: 11.x is strongly typed only
        error = self._check(network, config)
        if error is None and strongly and trt.fail_strongly_typed:
            error = "no implementation for a strongly typed Q/DQ pattern"
        if error is not None:
            trt.log_error(error)
            return None
        config.cache.entries.add(f"tactic-{len(config.cache.entries)}-{trt.build_tag}")
        trt.configs.append(config)
        shapes = config.profiles[0].shapes if config.profiles else {}
        plan = {"magic": "fake-trt-plan", "version": trt.__version__, "strongly_typed": strongly,
                "flags": sorted(config.flags), "version_compatible": "VERSION_COMPATIBLE" in config.flags,
                "inputs": [{"name": t.name, "dtype": t.dtype.name, "shape": list(t.shape),
                            "profile": [list(s) for s in shapes.get(t.name, ((), (), ()))]} for t in network.inputs],
                "outputs": [{"name": t.name, "dtype": t.dtype.name, "shape": list(t.shape)} for t in network.outputs]}
        return json.dumps(plan).encode()

    def _check(self, network: FakeNetwork, config: FakeConfig) -> str | None:
        level = config.hardware_compatibility_level
        if level.name == "AMPERE_PLUS" and self.trt.compute_capability < (8, 0):
            # [devguide] "Hardware Compatibility": ampere_plus engines are built on Ampere or newer (paraphrased)
            return "Error Code 2: Internal Error (Hardware compatibility is only supported on Ampere and later.)"
        dynamic = any(-1 in t.shape for t in network.inputs)
        if dynamic and not config.profiles:  # TensorRT's own text [devguide] "Working with Dynamic Shapes"
            return "Error Code 4: Internal Error (Network has dynamic or shape inputs, but no optimization " \
                   "profile has been defined.)"
        for p, profile in enumerate(config.profiles):
            for t in network.inputs:
                if t.name not in profile.shapes:
                    return f"Error Code 4: Internal Error (Optimization profile {p} has no shape for input " \
                           f"{t.name}.) (paraphrased)"
                lo, opt, hi = profile.shapes[t.name]
                if len(lo) != len(t.shape):
                    return f"Error Code 4: Internal Error ({t.name}: profile {p} has rank {len(lo)}, the network " \
                           f"{len(t.shape)}.) (paraphrased)"
                for axis, d in enumerate(t.shape):
                    if d >= 0 and not lo[axis] == opt[axis] == hi[axis] == d:
                        return (f"Error Code 4: Internal Error ({t.name}: for dimension number {axis} in profile {p} "
                                f"does not match network definition (got min={lo[axis]}, opt={opt[axis]}, "
                                f"max={hi[axis]}), expected min=opt=max={d}).)")
            extra = set(profile.shapes) - {t.name for t in network.inputs}
            if extra:
                return f"Error Code 3: API Usage Error (profile {p} names {sorted(extra)}, which are not network " \
                       "inputs.) (paraphrased)"
        return None


# runtime -------------------------------------------------------------------------------------------

class FakeRuntime(Bound):
    __slots__ = ("engine_host_code_allowed",)

    def __init__(self, logger, trt: FakeTrt) -> None:
        trt.keep_logger(logger)
        self.trt, self.engine_host_code_allowed = trt, False  # [pyCore] IRuntime.engine_host_code_allowed

    def deserialize_cuda_engine(self, data: bytes) -> FakeEngine | None:
        """[pyCore] returns None (never raises) when deserializeCudaEngine fails, with the reason logged."""
        try:
            plan = json.loads(bytes(data).decode())
            assert plan["magic"] == "fake-trt-plan"
        except (ValueError, UnicodeDecodeError, AssertionError, KeyError):
            self.trt.log_error("Error Code 1: Serialization (Serialization assertion magicTagRead == kMAGIC_TAG "
                               "failed.Magic tag does not match)")
            return None
        built, here = (tuple(int(x) for x in v.split(".")[:2]) for v in (plan["version"], self.trt.__version__))
        if plan["version_compatible"]:
            # [devguide] "Version Compatibility": a version-compatible plan carries a lean runtime that runs
            # as host code, refused unless IRuntime.engine_host_code_allowed (as Polygraphy's loader sets it)
            if not self.engine_host_code_allowed:
                self.trt.log_error("Error Code 1: Serialization (the engine holds host code (lean runtime) and "
                                   "engine_host_code_allowed is false) (paraphrased)")
                return None
            if built[0] != here[0] or built > here:
                self.trt.log_error("Error Code 1: Serialization (version-compatible plan from another major or a "
                                   "later version) (paraphrased)")
                return None
        elif plan["version"] != self.trt.__version__:
            self.trt.log_error("Error Code 1: Serialization (Serialization assertion stdVersionRead == "
                               "kSERIALIZATION_VERSION failed.Version tag does not match) (paraphrased)")
            return None
        self.trt.free_bytes -= FakeEngine.WEIGHT_BYTES  # weights go to the GPU at deserialize
        return FakeEngine(self.trt, plan)


class FakeEngine(Bound):
    __slots__ = ("plan", "io")
    WEIGHT_BYTES, ACTIVATION_BYTES = 3 << 20, 5 << 20
    # [pyCore] device_memory_size: 10.x only ([mig11] removed in 11.0); device_memory_size_v2 from 10.1
    SINCE = {"device_memory_size_v2": (10, 1)}
    UNTIL = {"device_memory_size": 10}

    def __init__(self, trt: FakeTrt, plan: dict) -> None:
        self.trt, self.plan = trt, plan
        self.io = {t["name"]: (trt.TensorIOMode.INPUT, t) for t in plan["inputs"]}
        self.io.update({t["name"]: (trt.TensorIOMode.OUTPUT, t) for t in plan["outputs"]})

    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    def get_tensor_name(self, i: int) -> str:
        return list(self.io)[i]

    def get_tensor_mode(self, name: str):
        return self.io[name][0] if name in self.io else self.trt.TensorIOMode.NONE

    def get_tensor_dtype(self, name: str):
        return getattr(self.trt.DataType, self.io[name][1]["dtype"])

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.io[name][1]["shape"])

    @property
    def device_memory_size(self) -> int:
        return self.ACTIVATION_BYTES

    @property
    def device_memory_size_v2(self) -> int:
        return self.ACTIVATION_BYTES

    def create_execution_context(self, strategy=None) -> FakeContext | None:
        # [pyCore] create_execution_context(strategy=ExecutionContextAllocationStrategy.STATIC): STATIC
        # allocates the activation memory now; USER_MANAGED waits for set_device_memory
        strategy = self.trt.ExecutionContextAllocationStrategy.STATIC if strategy is None else strategy
        if self.trt.fail_context:
            self.trt.log_error("Error Code 2: OutOfMemory (Requested size was 5242880 bytes.) (paraphrased)")
            return None  # [pyCore] returns the pointer as-is: None on failure
        if strategy.name == "STATIC":
            self.trt.free_bytes -= self.ACTIVATION_BYTES
        return FakeContext(self, strategy.name == "USER_MANAGED")

    def create_engine_inspector(self) -> SimpleNamespace:
        """Layer information as TensorRT's inspector gives it with DETAILED verbosity ([devguide] "Engine
        Inspector"): reformat layers named after the fused layer they feed (so their names hold " + "),
        a NoOp, a Myelin subgraph named {ForeignNode[first...last]}; the engine's I/O under "Bindings"
        (names) on 10.x, "I/O Tensors" (objects) on 11.x. The Myelin layer's LayerType is unverified."""
        layers = [{"Name": "Reformatting CopyNode for Input Tensor 0 to conv1 + bn1 + relu1", "LayerType": "Reformat"},
                  {"Name": "conv1 + bn1 + relu1", "LayerType": "CaskConvolution"},
                  {"Name": "conv2 + relu2", "LayerType": "CaskConvolution"},
                  {"Name": "flatten + reshape_copy", "LayerType": "NoOp"},
                  {"Name": "{ForeignNode[/fc1/MatMul.../fc2/Add]}", "LayerType": "Myelin"},
                  {"Name": "softmax", "LayerType": "CaskSoftMax"}]
        names = list(self.io)
        io = {"I/O Tensors": [{"Name": n, "Mode": self.io[n][0].name} for n in names]} if self.trt.major >= 11 \
            else {"Bindings": names}

        def info(fmt) -> str:
            assert fmt is self.trt.LayerInformationFormat.JSON
            return json.dumps({"Layers": layers, **io})

        return SimpleNamespace(get_engine_information=info)


class FakeContext(Bound):
    __slots__ = ("engine", "shapes", "addresses", "memory", "user_managed", "warm")
    # [pyCore] set_device_memory(memory, size) from 10.1 (10.0 bound only the `device_memory` setter)
    SINCE = {"set_device_memory": (10, 1)}

    def __init__(self, engine: FakeEngine, user_managed: bool) -> None:
        self.trt, self.engine, self.user_managed = engine.trt, engine, user_managed
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.memory = None
        self.warm: set = set()  # input shapes this context has run with (capture needs a run first)

    def _refuse(self, msg: str) -> bool:
        self.trt.log_error(f"Error Code 3: API Usage Error ({msg}) (paraphrased)")
        return False

    def set_device_memory(self, memory: int, size: int) -> None:
        self.memory = (memory, size)

    def set_input_shape(self, name: str, shape) -> bool:
        """[pyCore] returns bool: False (reason logged) for a non-input, a wrong rank, a static dimension
        changed or a shape outside the profile."""
        if name not in self.engine.io or self.engine.io[name][0].name != "INPUT":
            return self._refuse(f"{name} is not an input tensor")
        spec, shape = self.engine.io[name][1], tuple(shape)
        lo, _, hi = spec["profile"]
        if len(shape) != len(spec["shape"]) or any(d >= 0 and s != d for s, d in zip(shape, spec["shape"], strict=True)):
            return self._refuse(f"setInputShape {name}: {shape} does not match the static dimensions {spec['shape']}")
        if lo and any(not a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return self._refuse(f"setInputShape {name}: {shape} is outside the profile's [{lo}, {hi}]")
        self.shapes[name] = shape
        return True

    def set_tensor_address(self, name: str, memory: int) -> bool:  # [pyCore] returns bool
        if name not in self.engine.io:
            return self._refuse(f"{name} is not an I/O tensor of the engine")
        if not memory:
            return self._refuse(f"setTensorAddress {name}: null address")
        self.addresses[name] = int(memory)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        mode, spec = self.engine.io[name]
        if mode.name == "INPUT":
            return self.shapes.get(name, tuple(spec["shape"]))
        ins = [t["name"] for t in self.engine.plan["inputs"]]
        batch = self.shapes[ins[0]][0] if all(n in self.shapes for n in ins) else -1
        return (batch, *(max(d, 1) for d in spec["shape"][1:]))

    def execute_async_v3(self, stream_handle: int) -> bool:
        """[pyCore] returns bool: False (reason logged) without input shapes, addresses or device memory."""
        ins = [t["name"] for t in self.engine.plan["inputs"]]
        if missing := [n for n in ins if n not in self.shapes]:
            return self._refuse(f"input shapes not specified for {missing}")
        if missing := [n for n in self.engine.io if n not in self.addresses]:
            return self._refuse(f"no address set for {missing}")
        if self.user_managed and (self.memory is None or self.memory[1] < self.engine.ACTIVATION_BYTES):
            return self._refuse("USER_MANAGED context without (enough) device memory set")
        stream = self.trt.streams.get(stream_handle)
        graph = stream.capturing if stream is not None else None
        key = tuple(sorted(self.shapes.items()))
        if graph is None:
            self._compute()
            self.warm.add(key)
            return True
        if self.trt.capture_fails or key not in self.warm:
            # [trtexec] createGraph: "the enqueue call may return false if the current CUDA graph capture
            # fails" (operations not permitted under capture); [devguide] "CUDA Graphs": enqueue once
            # after a shape change before capturing, since the first enqueue may do deferred work
            graph.invalidated = True
            return self._refuse("enqueue during CUDA graph capture failed: operation not permitted when stream "
                                "is capturing")
        snapshot = dict(self.shapes)

        def replay() -> None:
            # [devguide] "CUDA Graphs": a graph must be recaptured after the context's input shapes change
            if self.shapes != snapshot:
                raise RuntimeError(f"CUDA graph captured at {snapshot} replayed after its context's input shapes "
                                   f"became {self.shapes}: undefined in TensorRT")
            self._compute()

        graph.work.append(replay)
        return True

    def _compute(self) -> None:
        """output_k[i] = (k + 1) * sum of row i of every input, read and written at the set addresses."""
        rows = None
        for t in self.engine.plan["inputs"]:
            x = memory_at(self.addresses[t["name"]], NUMPY[t["dtype"]], self.shapes[t["name"]])
            s = x.reshape(len(x), -1).astype(np.float64).sum(axis=1)
            rows = s if rows is None else rows + s
        for k, t in enumerate(self.engine.plan["outputs"]):
            shape = self.get_tensor_shape(t["name"])
            out = memory_at(self.addresses[t["name"]], NUMPY[t["dtype"]], shape)
            out[...] = ((k + 1) * rows).reshape(-1, *[1] * (len(shape) - 1))


# CPU stand-ins for torch's CUDA device memory, streams and graphs (tensorrt.CUDA) ----------------

class FakeStream:
    def __init__(self, handle: int) -> None:
        self.cuda_stream, self.capturing = handle, None

    def synchronize(self) -> None:
        pass


class FakeGraph:
    def __init__(self) -> None:
        self.work, self.invalidated, self.replays = [], False, 0

    def replay(self) -> None:
        self.replays += 1
        for w in self.work:
            w()


class CpuSamples:
    def __init__(self, samples: np.ndarray, dtype, max_batch: int) -> None:
        import torch

        self.samples = torch.from_numpy(samples).to(dtype)

    def gather(self, idx, out=None):
        import torch

        return torch.index_select(self.samples, 0, torch.as_tensor(np.asarray(idx, dtype=np.int64)), out=out)


class CpuCuda:
    """What `tensorrt.CudaTorch` does, on the CPU: tensors, no-op streams, graphs replaying the work the
    fake execution contexts queued during capture."""

    def __init__(self, trt: FakeTrt) -> None:
        self.trt, self.allocated = trt, 0

    def tensor(self, shape, dtype):
        import torch

        t = torch.zeros(shape, dtype=dtype)
        self.allocated += t.numel() * t.element_size()
        return t

    def host(self, shape, dtype):
        import torch

        return torch.zeros(shape, dtype=dtype)

    def stream(self) -> FakeStream:
        s = FakeStream(1000 + len(self.trt.streams))
        self.trt.streams[s.cuda_stream] = s
        return s

    def on(self, stream):
        return contextlib.nullcontext()

    def graph(self) -> FakeGraph:
        return FakeGraph()

    @contextlib.contextmanager
    def capture(self, graph: FakeGraph, stream: FakeStream):
        stream.capturing = graph
        try:
            yield
        finally:
            stream.capturing = None
        if graph.invalidated:  # as torch's capture_end raises on cudaErrorStreamCaptureInvalidated
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture")

    def synchronize(self) -> None:
        pass

    def free_bytes(self) -> int:
        return self.trt.free_bytes

    def peak_allocated(self) -> int:
        return self.allocated

    def process_used_mb(self) -> None:
        return None

    def samples(self, samples, dtype, max_batch: int) -> CpuSamples:
        return CpuSamples(samples, dtype, max_batch)


# the module ----------------------------------------------------------------------------------------

class FakeTrt(SimpleNamespace):
    """`import tensorrt` result, enums gated per version; steer failures per test through its attributes."""

    def __init__(self, version: str = "10.13.0.35", compute_capability: tuple[int, int] = (9, 0)) -> None:
        major, minor = (int(x) for x in version.split(".")[:2])
        flags = {"FP16": 0, "INT8": 1, "VERSION_COMPATIBLE": 11, "BF16": 17, "FP8": 18}
        if major >= 11:  # [mig11] the weak-typing flags are gone in 11.x
            flags = {"VERSION_COMPATIBLE": 11}
        levels = {"NONE": 0, "AMPERE_PLUS": 1}
        if (major, minor) >= (10, 9):  # [pyCore] kSAME_COMPUTE_CAPABILITY bound from 10.9
            levels["SAME_COMPUTE_CAPABILITY"] = 2
        dtypes = {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6, "BF16": 7, "INT64": 8}
        severity = _enum("Severity", {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4})

        class ILogger:
            Severity = severity

            def __init__(self) -> None:
                pass

        super().__init__(
            __version__=version, major=major, v=(major, minor), compute_capability=compute_capability,
            fail_strongly_typed=False, fail_context=False, capture_fails=False, parser_errors=[],
            network_flags=[], parsed=[], configs=[], build_tag="a", logger=None, warnings=[], streams={},
            free_bytes=80 << 30, ILogger=ILogger,
            MemoryPoolType=_enum("MemoryPoolType", {"WORKSPACE": 0}),
            ProfilingVerbosity=_enum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2}),
            BuilderFlag=_enum("BuilderFlag", flags),
            HardwareCompatibilityLevel=_enum("HardwareCompatibilityLevel", levels),
            LayerInformationFormat=_enum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1}),
            DataType=_enum("DataType", dtypes),
            TensorIOMode=_enum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2}),
            ExecutionContextAllocationStrategy=_enum("ExecutionContextAllocationStrategy",
                                                     {"STATIC": 0, "ON_PROFILE_CHANGE": 1, "USER_MANAGED": 2}),
        )
        if major == 10:  # [mig11] 11.x networks are strongly typed without a flag
            self.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 5})
        self.Builder = lambda logger: FakeBuilder(logger, self)
        self.OnnxParser = lambda network, logger: FakeParser(network, logger, self)
        self.Runtime = lambda logger: FakeRuntime(logger, self)

    def keep_logger(self, logger) -> None:
        """TensorRT keeps the first logger it is given for the whole process ([devguide] "The Runtime
        Phase"/NvInferRuntime.h getLogger()); a different one later is ignored with this warning."""
        if self.logger is None:
            self.logger = logger
        elif logger is not self.logger:
            self.logger.log(self.ILogger.Severity.WARNING,
                            "Logger passed to createInferRuntime differs from one already registered for an "
                            "existing builder, runtime, or refitter. So the current new logger is ignored, and "
                            "TensorRT will use the existing one which is returned by nvinfer1::getLogger() instead.")

    def log_error(self, msg: str) -> None:
        self.logger.log(self.ILogger.Severity.ERROR, msg)
