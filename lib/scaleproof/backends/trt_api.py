"""TensorRT's 10.x and 11.x API surfaces, and everything about a TensorRT build that needs no GPU.

What differs between the versions (TensorRT docs, "Migrating from TensorRT 10.x to 11.x"):
- 11.x networks are strongly typed, always: `create_network(0)` is strongly typed, and the weak-typing
  builder flags (`BuilderFlag.FP16`, `INT8`, `BF16`, `FP8`…) and INT8 calibrators are gone. Precision
  comes from the ONNX: an FP16 model, or Q/DQ nodes for INT8.
- 10.x builds strongly typed networks when asked (`NetworkDefinitionCreationFlag.STRONGLY_TYPED`) and
  still accepts the weak-typing flags (deprecated since 10.12); scaleproof uses them only as a recorded
  fallback when a strongly typed build fails.
- `ICudaEngine.device_memory_size` is gone in 11.x; `device_memory_size_v2` (added in 10.1, with
  `IExecutionContext.set_device_memory(ptr, size)`) is the name on both.
- `HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY` exists from 10.9 on.
- The engine inspector's JSON lists the engine's I/O under "Bindings" (names) on 10.x and under
  "I/O Tensors" (objects) on 11.x.
Nothing here imports tensorrt: the module object is passed in, so tests drive it with a stand-in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ArtifactError, ParamsError

HARDWARE_COMPAT = {"none": "NONE", "ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


@dataclass(frozen=True)
class TrtApi:
    major: int
    minor: int
    version: str

    @classmethod
    def from_version(cls, version: str) -> TrtApi:
        m = re.match(r"^(\d+)\.(\d+)", version)
        if not m:
            raise ParamsError(f"cannot read a TensorRT version from {version!r}")
        major, minor = int(m.group(1)), int(m.group(2))
        if major < 10:
            raise ParamsError(f"TensorRT {version} is too old: scaleproof builds with the 10.x and 11.x APIs "
                              "(named tensors, execute_async_v3, strongly typed networks)")
        return cls(major, minor, version)

    @property
    def weak_typing_available(self) -> bool:
        return self.major == 10

    def network_flags(self, trt, strongly_typed: bool) -> int:
        """Flags for `builder.create_network`: strongly typed by default on 11.x, by flag on 10.x."""
        if self.major >= 11:
            if not strongly_typed:
                raise ParamsError(f"TensorRT {self.version} builds strongly typed networks only")
            return 0
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0

    @property
    def user_managed_memory(self) -> bool:
        """Contexts can share one block of device memory: `device_memory_size_v2` and
        `set_device_memory(ptr, size)` exist from 10.1 on (pyCore.cpp; 10.0 had only the older forms)."""
        return (self.major, self.minor) >= (10, 1)

    def device_memory_bytes(self, engine) -> int:
        """Activation memory an execution context needs: `device_memory_size_v2` from 10.1 (11.x removed only
        the old name), `device_memory_size` on 10.0."""
        return int(engine.device_memory_size_v2 if self.user_managed_memory else engine.device_memory_size)

    def hardware_compat_level(self, trt, level: str, compute_capability: str | None):
        """The `HardwareCompatibilityLevel` member for `level`, refused where this TensorRT or GPU cannot build it."""
        if level not in HARDWARE_COMPAT:
            raise ParamsError(f"trt_hardware_compat {level!r} is not one of {', '.join(HARDWARE_COMPAT)}")
        if level == "same_compute_capability" and (self.major, self.minor) < (10, 9):
            raise ParamsError(f"trt_hardware_compat same_compute_capability needs TensorRT 10.9 or later; "
                              f"{self.version} is installed: use none or ampere_plus")
        if level == "ampere_plus" and compute_capability and tuple(map(int, compute_capability.split("."))) < (8, 0):
            raise ParamsError(f"trt_hardware_compat ampere_plus builds on Ampere or newer GPUs (compute capability "
                              f">= 8.0); this GPU is {compute_capability}: use none")
        return getattr(trt.HardwareCompatibilityLevel, HARDWARE_COMPAT[level])


@dataclass(frozen=True)
class PrecisionPlan:
    onnx: str  # which ONNX artifact the engine is built from: fp32, fp16 or int8 (Q/DQ)
    strongly_typed: bool
    builder_flags: tuple[str, ...]  # weak typing only: BuilderFlag names to set
    typing: str  # how precision reaches the engine, for build.json and the report


def precision_plan(api: TrtApi, precision: str, artifacts: set[str], weak: bool = False) -> PrecisionPlan:
    """Which ONNX file and which typing build an engine of `precision` with this TensorRT version."""
    if weak and not api.weak_typing_available:
        raise ParamsError(f"TensorRT {api.version} has no weak typing (no FP16/INT8 builder flags); "
                          "precision must come from the ONNX model")
    if precision == "fp32":
        return PrecisionPlan("fp32", True, (), "strongly typed: FP32 ONNX")
    if precision in ("fp16", "int8"):
        source = "fp32" if (weak and precision == "fp16") else precision
        if source not in artifacts:
            made_by = {"fp16": "calibrate/model.fp16.onnx", "int8": "calibrate/model.int8.onnx (Q/DQ)"}[source]
            raise ArtifactError(f"TensorRT {precision} needs the {source} ONNX model ({made_by}), which this run "
                                "does not have: run stage 02_calibrate with this precision in `precisions`")
        if not weak:
            what = "FP16 ONNX (float16 weights, float32 I/O)" if precision == "fp16" else "Q/DQ ONNX (explicit INT8)"
            return PrecisionPlan(source, True, (), f"strongly typed: {what}")
        flags = ("FP16",) if precision == "fp16" else ("INT8", "FP16")
        return PrecisionPlan(source, False, flags, f"weak typing (TensorRT 10.x fallback): {source.upper()} "
                                                   f"ONNX with BuilderFlag {' + '.join(flags)}")
    raise ParamsError(f"TensorRT {precision} is not built here: scaleproof makes FP32, FP16 and INT8 Q/DQ ONNX "
                      "models (a BF16 or FP8 model would have to come from ModelOpt)")


@dataclass(frozen=True)
class TrtOptions:
    """Build options of 03_build for TensorRT (parameters trt_*)."""

    workspace_mb: int = 4096
    min_batch: int = 1
    opt_batch: int = 0  # 0: the dynamic batcher's max batch
    max_batch: int = 64
    opt_level: int = 3
    hardware_compat: str = "none"
    version_compatible: bool = False
    weak_typing_fallback: bool = True
    cuda_graph: bool = True
    timing_cache_dir: str = ""

    def profile(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) shapes of one input in the optimization profile, batch axis first (named
        dimensions other than batch are fixed at their `dims` size)."""
        opt = self.opt_batch or self.max_batch
        if not 1 <= self.min_batch <= opt <= self.max_batch:
            raise ParamsError(f"TensorRT profile needs 1 <= trt_min_batch ({self.min_batch}) <= opt batch ({opt}) "
                              f"<= max_batch ({self.max_batch})")
        return (self.min_batch, *shape), (opt, *shape), (self.max_batch, *shape)

    def profile_for(self, name: str, network_shape: tuple[int, ...], sample_shape: tuple[int, ...]):
        """The profile of one input, checked against the parsed network's shape (-1 where dynamic): TensorRT
        fails a build whose profile differs from a static dimension, so say why before building."""
        lo, opt, hi = self.profile(sample_shape)
        if len(network_shape) != len(lo):
            raise ArtifactError(f"input {name!r} has shape {list(network_shape)} in the ONNX model, the model's "
                                f"input spec gives it {len(lo)} dimensions (batch, {list(sample_shape)})")
        for axis, d in enumerate(network_shape):
            if d >= 0 and not lo[axis] == opt[axis] == hi[axis] == d:
                if axis == 0:
                    raise ArtifactError(
                        f"input {name!r} has a fixed batch dimension of {d} in the ONNX model, so its engine serves "
                        f"batch {d} only: build with trt_min_batch = max_batch = {d}, or export the model with a "
                        f"dynamic batch axis (asked: batch {lo[0]} to {hi[0]})")
                raise ArtifactError(f"input {name!r} has the static dimension {d} at axis {axis} in the ONNX model, "
                                    f"the model's input spec gives {lo[axis]}: set `dims` to match the model")
        return lo, opt, hi


def parser_error_text(err) -> str:
    """One ONNX parser error with the node it is about (IParserError: node, node_name, node_operator, desc)."""
    where = []
    for attr in ("node_name", "node_operator"):
        try:
            value = getattr(err, attr)()
        except (AttributeError, TypeError):
            value = ""
        if value:
            where.append(str(value))
    try:
        index = err.node()
    except (AttributeError, TypeError):
        index = -1
    node = f"node {index}" + (f" ({', '.join(where)})" if where else "") if index is not None and index >= 0 else \
        ("node " + ", ".join(where) if where else "model")
    return f"{node}: {err.desc()}"


def summarize_layers(info_json: str, onnx_nodes: int) -> dict[str, Any]:
    """Layer list and fusion counts from the engine inspector's JSON (built with DETAILED verbosity).

    A fused layer is one TensorRT formed from several network layers: its name joins them with " + ".
    Reformat and NoOp layers are not fusions although their names can contain " + " (they name the
    fused layer they feed, e.g. "Reformatting CopyNode for Input Tensor 0 to conv1 + relu1"); reformats
    are counted apart, being kernels fusion did not remove. Myelin subgraphs ("{ForeignNode[a...b]}")
    are counted apart too: their names give a range of nodes, not a count.
    """
    doc = json.loads(info_json)
    layers = doc.get("Layers", [])
    rows = []
    for layer in layers:
        if isinstance(layer, str):  # non-DETAILED verbosity: names only
            rows.append({"name": layer, "type": ""})
        else:
            rows.append({"name": layer.get("Name", ""), "type": layer.get("LayerType", "")})
    reformat = [r for r in rows if r["type"] == "Reformat" or r["name"].startswith("Reformatting")]
    foreign = [r for r in rows if "ForeignNode" in r["name"] or r["type"] in ("Myelin", "ForeignNode")]
    skip = {id(r) for r in reformat + foreign} | {id(r) for r in rows if r["type"] == "NoOp"}
    fused = [r for r in rows if " + " in r["name"] and id(r) not in skip]
    io = doc.get("I/O Tensors", doc.get("Bindings", []))  # 11.x: objects with a "Name"; 10.x: names
    return {
        "onnx_nodes": onnx_nodes,
        "engine_layers": len(rows),
        "fused_layers": len(fused),
        "network_layers_in_fused": sum(r["name"].count(" + ") + 1 for r in fused),
        "reformat_layers": len(reformat),
        "foreign_nodes": len(foreign),
        "detailed": bool(layers) and not isinstance(layers[0], str),
        "io_tensors": [t.get("Name", "") if isinstance(t, dict) else t for t in io],
        "layers": rows,
    }
