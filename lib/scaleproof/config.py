"""Every run parameter, declared once: type, default, help and the rules between them.

Notebooks repeat these names in their `parameters` cell (plain values papermill can override);
`tests/test_notebooks_params.py` keeps those cells and this model in step. The runner validates a
whole profile here before any work starts, so an unknown or ill-typed parameter stops a run at once
with a message that names it.
"""

from __future__ import annotations

import json
import os
import re
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ParamsError
from .io_spec import InputSpec, ModelIO


class Exporter(StrEnum):
    dynamo = "dynamo"  # torch.export-based exporter (the default since torch 2.9)
    torchscript = "torchscript"  # legacy tracer, for models torch.export cannot capture


class CalibMethod(StrEnum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class Quantizer(StrEnum):
    auto = "auto"  # ModelOpt where installed, else ONNX Runtime
    onnxruntime = "onnxruntime"
    modelopt = "modelopt"  # NVIDIA ModelOpt ONNX PTQ (extra: scaleproof[modelopt])


class QuantScope(StrEnum):
    auto = "auto"  # all, matmul and (CPU) dynamic judged; mixed precision only if none passes; the fastest passing kept
    all = "all"  # static Q/DQ on every quantizable op
    matmul = "matmul"  # static Q/DQ on MatMul/Gemm only (transformers: attention and MLP projections)
    dynamic = "dynamic"  # ONNX Runtime dynamic INT8 on MatMul/Gemm (CPU only; not Q/DQ, TensorRT cannot build it)


class Int8Format(StrEnum):
    auto = "auto"  # by the CPU's instruction set (quantization/int8_format.py says why)
    s8s8 = "s8s8"  # signed INT8 activations and weights, symmetric (TensorRT's and ONNX Runtime's default)
    s8s8_reduced_range = "s8s8-reduced-range"  # S8S8 with 7-bit weights: no 16-bit saturation on CPUs without VNNI
    u8u8 = "u8u8"  # unsigned INT8 activations (asymmetric) and weights: ONNX Runtime on CPU only


class Metric(StrEnum):
    auto = "auto"  # top1 with labels; agreement for input_shape classifiers' (N, C) outputs; cosine otherwise
    top1 = "top1"  # top-1 accuracy against labels
    agreement = "agreement"  # top-1 agreement with the FP32 reference
    cosine = "cosine"  # cosine similarity of each sample's output to FP32 (embeddings)
    error = "error"  # output error against FP32 only (max_output_err)
    user = "user"  # metric_fn
    auc = "auc"  # ROC AUC (and log loss) of a one-wide sigmoid output (a click probability) against 0/1 labels


class Backend(StrEnum):
    auto = "auto"
    onnxruntime = "onnxruntime"
    torch = "torch"
    tensorrt = "tensorrt"


class TorchMode(StrEnum):
    eager = "eager"
    cuda_graph = "cuda_graph"  # one CUDA graph per batch bucket, static input/output buffers
    compile = "compile"  # torch.compile, then one CUDA graph per batch bucket


class CompileMode(StrEnum):
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"
    max_autotune_no_cudagraphs = "max-autotune-no-cudagraphs"


class HardwareCompat(StrEnum):
    none = "none"  # the engine runs on the GPU type it was built on
    ampere_plus = "ampere_plus"  # any GPU of compute capability 8.0 or more (some speed lost)
    same_compute_capability = "same_compute_capability"


class ConfirmScope(StrEnum):
    leaders = "leaders"
    all = "all"


class Precision(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    int8 = "int8"
    fp8 = "fp8"  # torch on a GPU of compute capability 8.9 or more, through torchao
    int8_weight_only = "int8-weight-only"  # torch on a CUDA GPU, through torchao: INT8 weights, 16-bit activations


def _field(default: Any, help: str, **kw: Any) -> Any:
    # Enums arrive as strings from YAML and papermill: accept their values, nothing looser.
    return Field(default, description=help, **kw)


class Params(BaseModel):
    """All parameters of a run. Each stage notebook declares the subset it uses."""

    # no inf or nan in any float: `min_time_s: .inf` would time forever
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True, frozen=True, allow_inf_nan=False)

    # run-wide
    run_dir: str = _field("../outputs/dev", "folder the stages read and write (the runner sets it)")
    model: str = _field("zoo:digits-cnn", "zoo:NAME or package.module:factory returning a torch.nn.Module")
    model_version: str = _field("", "your label for this version of the model (e.g. v3, 2026-12): the ledger's "
                                     "trends and comparisons group runs by it; no effect on the run")
    input_shape: list[int] = _field([], "input shape without the batch axis; needed for models outside the zoo")
    inputs: list[InputSpec] = _field([], "named inputs: [{name, dtype, shape: [batch, ...], range}] (empty: input_shape "
                                         "or the zoo model's)", strict=False)
    outputs: list[str] = _field([], "output names, picked by name from dict/ModelOutput results (empty: the model's)")
    dims: dict[str, int] = _field({}, "size of each named dynamic dimension other than batch, e.g. {seq: 128}")
    weights: str = _field("", "safetensors file or torch checkpoint (read weights-only, never as a pickle) loaded into the model")
    weights_strict: bool = _field(True, "every key of the weights file must fit the model (false: keys matching "
                                        "weights_ignore may be left out or left over)")
    weights_ignore: list[str] = _field([], "fnmatch patterns of checkpoint or model keys that weights_strict: false "
                                           "lets go unloaded, e.g. ['pooler.*', 'embeddings.position_ids']")
    calib_data: str = _field("", "calibration data: .npz, image folder, .parquet/.csv or package.module:loader "
                                 "(empty: the zoo's data or synthetic)")
    val_data: str = _field("", "validation data, same forms as calib_data (the same source as calib_data is split "
                               "disjointly)")
    image_mean: list[float] = _field([0.485, 0.456, 0.406], "per-channel mean of image-folder preprocessing "
                                                            "(pixels scaled to [0, 1] first)")
    image_std: list[float] = _field([0.229, 0.224, 0.225], "per-channel std of image-folder preprocessing")
    seed: int = _field(0, "seed for data selection and synthetic inputs")
    threads: int = _field(0, "CPU threads for inference (0: all usable cores)", ge=0)

    # 01_export
    opset: int = _field(18, "ONNX opset to export to", ge=13)
    exporter: Exporter = _field(Exporter.dynamo, "dynamo or torchscript", strict=False)
    parity_atol: float = _field(1e-4, "largest |ONNX - PyTorch| output difference, relative to the output's own "
                                      "scale (max |PyTorch output|), for every output", gt=0)

    # 02_calibrate
    calib_method: CalibMethod = _field(CalibMethod.minmax, "minmax, entropy or percentile", strict=False)
    calib_percentile: float = _field(99.999, "percentile of activations the percentile method keeps", gt=0, le=100)
    calib_samples: int = _field(256, "number of calibration samples (disjoint from validation)", gt=0)
    per_channel: bool = _field(True, "per-channel weight scales")
    int8_format: Int8Format = _field(Int8Format.auto, "INT8 format: auto (by the CPU's instruction set: s8s8 with "
                                     "VNNI, AMX or Arm dot products, s8s8-reduced-range without), s8s8, "
                                     "s8s8-reduced-range or u8u8", strict=False)
    quantizer: Quantizer = _field(Quantizer.auto, "auto, onnxruntime or modelopt (auto: ModelOpt if installed)",
                                  strict=False)
    calib_cache_dir: str = _field("", "folder of keyed calibration caches, shareable across runs "
                                      "(empty: calibrate/cache of the run)")
    embedding_int8: bool = _field(True, "embedding tables (float tables of at least 256 rows read only by Gather) as "
                                        "weight-only INT8 with one scale per row in the INT8 model")
    quant_scope: QuantScope = _field(QuantScope.all, "INT8 scope: all, matmul, dynamic (CPU) or auto (each judged, the "
                                     "fastest inside the gate kept)", strict=False)
    sensitivity: bool = _field(True, "rank quantized nodes by the accuracy cost of quantizing each alone")
    sensitivity_groups: int = _field(16, "most groups of nodes sensitivity judges (nodes grouped by layer); "
                                         "0: every node alone", ge=0)
    sensitivity_budget_s: float = _field(300.0, "time budget of sensitivity and mixed precision; unjudged groups "
                                                "are reported as such", gt=0)
    mixed_precision: bool = _field(True, "if INT8 fails the gate, keep the most sensitive nodes in FP32 until it passes")
    mixed_precision_max_nodes: int = _field(8, "most nodes (groups of nodes, on large models) mixed precision may keep "
                                               "in FP32", ge=1)
    calib_compare: list[Annotated[CalibMethod, Field(strict=False)]] = _field(
        [], "calibration methods to compare by top-1 delta and INT8 speed (empty: none)")

    # 03_build
    backend: Backend = _field(Backend.auto, "auto, onnxruntime, torch or tensorrt", strict=False)
    precisions: list[Annotated[Precision, Field(strict=False)]] = _field(
        [Precision.fp32, Precision.int8], "precisions to build (fp32, fp16, bf16, int8; on a CUDA GPU through torchao also fp8 and int8-weight-only)"
    )
    max_batch: int = _field(64, "largest batch an engine must accept", gt=0)
    torch_modes: list[Annotated[TorchMode, Field(strict=False)]] = _field(
        [TorchMode.eager, TorchMode.cuda_graph], "PyTorch CUDA engines to build: eager, cuda_graph, compile")
    compile_mode: CompileMode = _field(CompileMode.default, "torch.compile mode (max-autotune takes minutes per shape)",
                                       strict=False)
    compile_freezing: bool = _field(False, "torch.compile with Inductor freezing: weights become constants, so "
                                          "batch norms fold into convolutions (faster kernels, a longer first compile)")
    onnx_gpu: bool = _field(False, "also build ONNX Runtime CUDA engines of the exported model (fp32, fp16 in "
                                   "precisions) beside the others; needs onnxruntime-gpu (the gpu extra)")
    lowp_keep_layers: list[str] = _field([], "Linear layers (module names, as build.json lists them) the torchao "
                                              "engines (int8, fp8, int8-weight-only) leave in bfloat16")
    compile_cache_dir: str = _field("", "folder of torch.compile caches per GPU type, torch version, model and mode "
                                        "(empty: ~/.cache/scaleproof/compile)")
    trt_workspace_mb: int = _field(4096, "TensorRT builder workspace limit in MiB", gt=0)
    trt_min_batch: int = _field(1, "smallest batch of the TensorRT optimization profile", gt=0)
    trt_opt_batch: int = _field(0, "batch TensorRT tunes kernels for (0: batcher_max_batch)", ge=0)
    trt_opt_level: int = _field(3, "TensorRT builder optimization level (0 fastest build to 5 most tuning)", ge=0, le=5)
    trt_hardware_compat: HardwareCompat = _field(HardwareCompat.none, "TensorRT hardware compatibility: none, "
                                                 "ampere_plus or same_compute_capability", strict=False)
    trt_version_compatible: bool = _field(False, "build TensorRT engines that later TensorRT versions of the same major load")
    trt_weak_typing_fallback: bool = _field(True, "on TensorRT 10.x, retry a failed strongly typed build with the "
                                                  "FP16/INT8 builder flags (recorded)")
    trt_cuda_graph: bool = _field(True, "capture one CUDA graph per batch bucket around TensorRT's execute_async_v3")
    trt_timing_cache_dir: str = _field("", "folder of TensorRT timing caches per GPU type and version "
                                           "(empty: the engine store of the GPU)")

    # 04_validate
    metric: Metric = _field(Metric.auto, "auto, top1, agreement, cosine, error, auc (a one-wide sigmoid output with "
                                         "0/1 labels) or user (metric_fn)", strict=False)
    metric_output: str = _field("", "output the metric judges (empty: the first)")
    metric_fn: str = _field("", "package.module:fn(judged output, labels, FP32 reference) -> score, higher is better")
    max_metric_drop: float = _field(0.01, "largest drop of metric_fn's score vs FP32 that passes the gate", ge=0)
    min_cosine: float = _field(0.99, "smallest mean cosine similarity to FP32 that passes the gate", ge=-1, le=1)
    max_output_err: float = _field(0.25, "largest mean |engine - FP32| over FP32's mean deviation between samples, "
                                         "judged output (always checked)", gt=0)
    max_auc_drop: float = _field(0.5, "largest AUC drop vs FP32, in points (0.5: 0.005 AUC), that passes the gate "
                                      "(metric auc)", ge=0)
    max_top1_drop: float = _field(1.0, "largest top-1 drop vs FP32, in points, that passes the gate", ge=0)
    min_agreement: float = _field(0.97, "smallest top-1 agreement with FP32 that passes the gate", ge=0, le=1)
    val_samples: int = _field(0, "validation samples to use (0: the whole split)", ge=0)

    # 05_benchmark
    batch_sizes: list[int] = _field([1, 8, 32], "batch sizes to time")
    warmup: int = _field(10, "untimed iterations before timing each batch size", ge=0)
    min_repeats: int = _field(30, "fewest timed iterations for a valid result", gt=0)
    min_time_s: float = _field(1.0, "shortest timed duration per batch size for a valid result", gt=0)
    max_cov: float = _field(0.2, "largest spread (CoV of 5 block means of latency) for a valid result", gt=0)
    sla_p99_ms: float = _field(15.0, "P99 latency bound of the Server scenario (MLPerf uses 15 ms for ResNet-50)", gt=0)
    batcher_max_batch: int = _field(32, "largest batch the dynamic batcher forms", gt=0)
    max_queue_delay_ms: float = _field(2.0, "longest a request waits in the batcher for a fuller batch", ge=0)
    static_batch: int = _field(1, "batch of the static comparison: fixed size, no queue window", gt=0)
    static_search: bool = _field(True, "search the static-batching Server peak too (the dynamic-vs-static comparison)")
    loadgen_min_duration_s: float = _field(1.0, "LoadGen minimum duration per run (MLPerf: 600)", gt=0)
    loadgen_min_queries: int = _field(100, "LoadGen minimum query count per run (MLPerf Server: 270336)", gt=0)
    peak_search_runs: int = _field(8, "most Server runs the peak-QPS search may take per engine and batching", ge=2)
    peak_tolerance: float = _field(0.05, "bisect until the highest VALID and lowest INVALID targets are this close "
                                         "(relative)", gt=0, lt=1)
    scaling_devices: int = _field(0, "devices for the per-device scaling of the best engine (0: skip, -1: all GPUs; "
                                     "CPU workers stand in on a CPU machine)", ge=-1)
    peak_repeats: int = _field(0, "independent peak searches per engine, for the run-to-run range (0: 2 on a CPU, "
                                  "3 on a GPU)", ge=0)
    min_priced_duration_s: float = _field(0.0, "shortest LoadGen run a priced capacity may come from (0: 10 s on a "
                                               "CPU, 30 s on a GPU); below that default the run is exploratory", ge=0)
    confirm_steps: int = _field(5, "confirmation runs: at the highest rate every peak search vouched for (or the "
                                   "share of it this run's earlier confirmations held, 80% at the lowest), then "
                                   "down by 1x, 2x, 4x ... peak_tolerance while INVALID", ge=1)
    remeasure_flagged: bool = _field(True, "measure a confirmed engine once more when an anomaly check flags its "
                                                "capacity (not for unstable_timings)")
    confirm: ConfirmScope = _field(ConfirmScope.leaders, "which engines get the priced confirmation run: leaders (the "
                                   "baseline and every engine not clearly behind the fastest's search range; the rest "
                                   "are reported with their search figures, not priced) or all (every engine priced)",
                                   strict=False)
    server_duration_budget_s: float = _field(60.0, "longest a Server run may last to meet LoadGen's early stopping "
                                                   "at a low rate (a slow model needs ~460 queries per VALID run)", gt=0)
    sweep_max_batch: list[int] = _field([], "batcher max batches to sweep with sweep_queue_delay_ms "
                                            "(empty: batcher_max_batch only)")
    sweep_queue_delay_ms: list[float] = _field([], "batcher queue delays to sweep with sweep_max_batch "
                                                   "(empty: max_queue_delay_ms only)")

    # 06_cost_report
    price_table: str = _field("", "CSV of prices with source and date per row (empty: the shipped table)")
    instance: str = _field("auto", "price-table row to price this machine at (auto: chosen by device)")
    price_usd_per_hour: float = _field(0.0, "override the table's hourly price (0: use the table)", ge=0)
    accelerators_per_instance: int = _field(1, "accelerators per priced instance: capacity is the per-accelerator "
                                               "peak times this times the measured scaling factor", ge=1)
    daily_requests: float = _field(2.88e9, "requests per day the service handles now", gt=0)
    peak_to_average: float = _field(3.0, "peak QPS over the day's average QPS", ge=1)
    target_utilization: float = _field(0.7, "planned utilization of each instance at peak", gt=0, le=1)
    redundancy: int = _field(1, "spare instances beyond what the peak needs (1: N+1)", ge=0)
    growth: list[float] = _field([1.0, 2.0, 5.0], "traffic multiples to plan for, e.g. now, 2x and 5x in 3 years")
    price_change: float = _field(-0.2, "relative hourly price change in the price scenario (-0.2: 20% cheaper)", gt=-1)
    revenue_per_1k: float = _field(0.0, "revenue per 1,000 requests in USD (0: no margin figures)", ge=0)

    # 08_deploy, after a run is published
    deploy_repo: str = _field("", "Triton model repository the published run is deployed into by 08_deploy "
                                  "(empty: no deploy; scaleproof deploy does it later)")

    # scaleproof fleet
    member_timeout_s: float = _field(0.0, "seconds a fleet member may run before it is stopped and reported failed "
                                          "(0: derived from this profile's measurement budget)", ge=0)
    member_retries: int = _field(0, "times Ray restarts a member whose node or worker died; each retry starts from "
                                    "a clean member folder (the dead attempt's files go to runs/failed/<TYPE>.attempt-N)",
                                 ge=0)
    member_pending_wait_s: float = _field(0.0, "seconds a fleet waits for a node of a GPU type the cluster lacks "
                                               "(an autoscaler starting one) before reporting it not run", ge=0)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Params:
        out_of_range(self)
        if not self.batch_sizes or any(b <= 0 for b in self.batch_sizes):
            raise ValueError("batch_sizes must be a non-empty list of positive integers")
        if max(self.batch_sizes) > self.max_batch:
            raise ValueError(f"batch_sizes go up to {max(self.batch_sizes)} but max_batch is {self.max_batch}")
        for name in ("batcher_max_batch", "static_batch", "trt_min_batch", "trt_opt_batch"):
            if getattr(self, name) > self.max_batch:
                raise ValueError(f"{name} is {getattr(self, name)} but max_batch is {self.max_batch}")
        if any(b <= 0 or b > self.max_batch for b in self.sweep_max_batch):
            raise ValueError(f"sweep_max_batch {self.sweep_max_batch} must lie in 1..max_batch ({self.max_batch})")
        if any(d < 0 for d in self.sweep_queue_delay_ms):
            raise ValueError(f"sweep_queue_delay_ms {self.sweep_queue_delay_ms} must not be negative")
        if not self.precisions:
            raise ValueError("precisions must name at least one of fp32, fp16, bf16, int8, fp8, int8-weight-only")
        if any(d <= 0 for d in self.input_shape):
            raise ValueError(f"input_shape must be positive, got {self.input_shape}")
        if self.inputs and self.input_shape:
            raise ValueError("give either inputs (named inputs) or input_shape (one float input), not both")
        if self.inputs:
            ModelIO(inputs=self.inputs, outputs=self.outputs or ["output"], dims=self.dims)  # names unique, dims sized
        if any(v <= 0 for v in self.dims.values()):
            raise ValueError(f"dims must be positive sizes, got {self.dims}")
        if self.metric is Metric.user and not self.metric_fn:
            raise ValueError("metric=user needs metric_fn: package.module:fn")
        if self.weights_ignore and self.weights_strict:
            raise ValueError("weights_ignore takes effect with weights_strict: false; set both")
        if self.metric_fn and ":" not in self.metric_fn:
            raise ValueError(f"metric_fn {self.metric_fn!r} is not package.module:fn")
        if bool(self.calib_data) != bool(self.val_data):
            raise ValueError("give both calib_data and val_data (the same source for both is split disjointly)")
        if not self.model.startswith("zoo:") and ":" not in self.model:
            raise ValueError(f"model {self.model!r} is neither zoo:NAME nor package.module:factory")
        return self

    # construction ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, values: dict[str, Any], origin: str = "parameters") -> Params:
        """Validate `values`; any problem becomes one ParamsError naming every bad parameter."""
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            lines = []
            for err in e.errors():
                name = ".".join(str(p) for p in err["loc"]) or "(cross-field rule)"
                if err["type"] == "extra_forbidden":
                    lines.append(f"  {name}: unknown parameter (known: see `scaleproof params`)")
                elif not err["loc"]:
                    msg = err["msg"].removeprefix("Value error, ")
                    first = msg.split(" ", 1)[0]  # a rule about one parameter (its range) is listed under its name
                    lines.append(f"  {first}: {msg.split(' ', 1)[1]}" if first in cls.model_fields
                                 and "outside" in msg else f"  {name}: {msg}")
                else:  # a bounded quote: the value may be huge (a YAML alias bomb, a pasted array)
                    lines.append(f"  {name}: {err['msg']} (got {quote(err.get('input'))})")
            raise ParamsError(f"invalid {origin}:\n" + "\n".join(lines)) from None

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]) -> Params:
        """Build from a notebook's globals: the parameters cell plus anything papermill injected. A name papermill
        injected that is no parameter is refused (papermill itself only warns), and a relative run_dir is taken
        from notebooks/, so a notebook run on its own writes under the repository's outputs/ from any folder."""
        unknown = sorted(set(injected_names(namespace.get("In") or [])) - set(cls.model_fields))
        if unknown:
            raise ParamsError(f"unknown notebook parameter(s) {unknown} (known: see `scaleproof params`)")
        from .paths import notebooks_dir

        values = {k: namespace[k] for k in cls.model_fields if k in namespace}
        profile = os.environ.get(PROFILE_ENV)
        if profile and not injected_names(namespace.get("In") or []):
            # a notebook run on its own (nothing injected): the profile fills what still has the cell's default
            path = Path(profile)
            path = path if path.is_absolute() or path.exists() else notebooks_dir().parent / path
            try:
                chosen = load_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
            except (OSError, yaml.YAMLError) as e:
                raise ParamsError(f"{PROFILE_ENV}={profile}: cannot read it as a profile ({e})") from None
            unknown_keys = sorted(set(chosen) - set(cls.model_fields)) if isinstance(chosen, dict) else ["(not a mapping)"]
            if unknown_keys:
                raise ParamsError(f"{PROFILE_ENV}={profile}: unknown parameter(s) {unknown_keys}")
            defaults = {k: f.default for k, f in cls.model_fields.items()}
            for k, v in chosen.items():
                if k in values and values[k] == defaults.get(k):
                    values[k] = v
        if "run_dir" in values and not Path(values["run_dir"]).is_absolute():
            values["run_dir"] = str((notebooks_dir() / values["run_dir"]).resolve())
        return cls.parse(values, origin="notebook parameters")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Params:
        path = Path(path)
        if not path.is_file():
            raise ParamsError(f"parameter file {path} does not exist")
        try:
            values = load_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
        except yaml.YAMLError as e:
            raise ParamsError(f"{path} is not valid YAML: {one_line(e)}") from None
        except UnicodeDecodeError as e:
            raise ParamsError(f"{path} is not UTF-8 text: {e.reason} at byte {e.start}") from None
        if not isinstance(values, dict):
            raise ParamsError(f"{path} must hold a mapping of parameter: value, got {type(values).__name__}")
        values.update(overrides or {})
        return cls.parse(values, origin=str(path))

    def with_absolute_paths(self, base: Path | None = None) -> Params:
        """File parameters made absolute (against `base`, default the working directory), so the stage
        kernels, which run elsewhere, find them; a file that does not exist is refused here, before any work.
        A `package.module:loader` is left as it is."""
        base = Path(base or Path.cwd())
        changes = {}
        for name in ("weights", "calib_data", "val_data", "price_table"):
            value = getattr(self, name)
            if not value or (":" in value and not Path(value).exists() and not Path(value).is_absolute()):
                continue
            path = (base / value).resolve()
            if not path.exists():
                raise ParamsError(f"{name}: {path} does not exist (relative paths are taken from {base})")
            changes[name] = str(path)
        for name in ("compile_cache_dir", "deploy_repo"):  # folders it may create
            value = getattr(self, name)
            if value and not Path(value).is_absolute() and "://" not in value:
                changes[name] = str((base / value).resolve())
        return self.with_(**changes) if changes else self

    def with_(self, **changes: Any) -> Params:
        return type(self).parse({**self.model_dump(), **changes})

    def values(self) -> dict[str, Any]:
        """Plain JSON-able values (enums as strings), as papermill and the manifest take them."""
        return self.model_dump(mode="json")

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir).resolve()

    @property
    def is_zoo(self) -> bool:
        return self.model.startswith("zoo:")


# the documented range of every numeric parameter beyond what its Field says (lower bounds there); each value must
# also be finite. Durations in seconds or milliseconds as named, counts, batch sizes, rates and money.
RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 2**32 - 1),  # numpy's seed range
    "threads": (0, 4096), "opset": (13, 30), "parity_atol": (0, 1),
    "calib_samples": (1, 1_000_000), "sensitivity_groups": (0, 100_000), "sensitivity_budget_s": (0, 86_400),
    "mixed_precision_max_nodes": (1, 100_000), "max_batch": (1, 65_536), "trt_workspace_mb": (1, 1_048_576),
    "trt_min_batch": (1, 65_536), "trt_opt_batch": (0, 65_536),
    "max_metric_drop": (0, 1e6), "max_output_err": (0, 1e6), "max_top1_drop": (0, 100), "val_samples": (0, 10_000_000),
    "warmup": (0, 100_000), "min_repeats": (1, 1_000_000), "min_time_s": (0, 3600), "max_cov": (0, 10),
    "sla_p99_ms": (0, 600_000), "batcher_max_batch": (1, 65_536), "max_queue_delay_ms": (0, 60_000),
    "static_batch": (1, 65_536), "loadgen_min_duration_s": (0, 86_400), "loadgen_min_queries": (1, 1_000_000_000),
    "peak_search_runs": (2, 100), "scaling_devices": (-1, 1024), "peak_repeats": (0, 100),
    "min_priced_duration_s": (0, 86_400), "confirm_steps": (1, 100),
    "price_usd_per_hour": (0, 1e6), "accelerators_per_instance": (1, 1024), "daily_requests": (0, 1e15),
    "peak_to_average": (1, 1e4), "redundancy": (0, 10_000), "price_change": (-1, 100), "revenue_per_1k": (0, 1e6),
    "member_timeout_s": (0, 7 * 86_400), "member_retries": (0, 100), "member_pending_wait_s": (0, 86_400),
}
# lists of numbers: every element in this range
ELEMENT_RANGES: dict[str, tuple[float, float]] = {
    "batch_sizes": (1, 65_536), "sweep_max_batch": (1, 65_536), "sweep_queue_delay_ms": (0, 60_000),
    "growth": (0, 1e4), "input_shape": (1, 10_000_000), "image_mean": (-1e3, 1e3), "image_std": (1e-6, 1e3),
}


def out_of_range(p: Params) -> None:
    """Raise naming the first parameter outside its documented range (RANGES, ELEMENT_RANGES)."""
    import math

    for name, (lo, hi) in RANGES.items():
        v = getattr(p, name, None)
        if isinstance(v, int | float) and not (lo <= v <= hi):
            raise ValueError(f"{name} {quote(v)} is outside its range {span(lo, hi)}")
    for name, (lo, hi) in ELEMENT_RANGES.items():
        bad = [v for v in getattr(p, name, []) if not (math.isfinite(v) and lo <= v <= hi)]
        if bad:
            raise ValueError(f"{name} has {quote(bad[0])}, outside the range {span(lo, hi)} of every element")
    bad_dims = {k: v for k, v in p.dims.items() if not 1 <= v <= 10_000_000}
    if bad_dims:
        raise ValueError(f"dims must be sizes in 1..10000000, got {quote(bad_dims)}")


def span(lo: float, hi: float) -> str:
    return "..".join(f"{int(x):,}" if float(x).is_integer() else f"{x:g}" for x in (lo, hi))


QUOTE_CHARS = 80


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """repr() of a value cut to `limit` characters, computed without expanding it (reprlib stops at a few items per
    level): an error message must not be the way a huge or self-similar input eats the memory."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother = 3, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


YAML_MAX_NODES = 100_000  # values a profile may hold once its aliases are expanded (the largest shipped: < 200)


class ProfileLoader(yaml.SafeLoader):
    """YAML as users write numbers: PyYAML follows YAML 1.1, where `1e9` and `1.0e9` (no dot, or no sign in the
    exponent) are strings; YAML 1.2, JSON and Python read them as floats, and so does a profile."""


ProfileLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ProfileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


class BoundedLoader(ProfileLoader):
    """SafeLoader that counts what the document's aliases expand to, before anything is built from it."""


def expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """Values the node stands for with every alias expanded, counted on the node graph (aliases share nodes, so
    this is linear in the document); a node that contains itself counts as over the limit."""
    key = id(node)
    if key in memo:
        if memo[key] < 0:
            return limit + 1  # a cycle: endless when expanded
        return memo[key]
    memo[key] = -1
    if isinstance(node, yaml.MappingNode):
        n = 1 + sum(expanded_size(k, memo, limit) + expanded_size(v, memo, limit) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        n = 1 + sum(expanded_size(v, memo, limit) for v in node.value)
    else:
        n = 1
    memo[key] = min(n, limit + 1)
    return memo[key]


def load_yaml(text: str, origin: str) -> Any:
    """yaml.safe_load, refusing a document whose aliases expand to more than YAML_MAX_NODES values (a "billion
    laughs" of a few hundred bytes) before it is built or validated."""
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node, {}, YAML_MAX_NODES) > YAML_MAX_NODES:
            raise ParamsError(f"{origin}: its YAML aliases expand to more than {YAML_MAX_NODES:,} values (or to "
                              "themselves); write the values out or use fewer aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


PROFILE_ENV = "SCALEPROOF_PARAMS"  # e.g. SCALEPROOF_PARAMS=params/smoke.yaml jupyter lab


def injected_names(cells: list[str]) -> list[str]:
    """Names assigned by papermill's injected-parameters cell (the latest one; it starts with "# Parameters")."""
    import ast

    for src in reversed(cells):
        if src.lstrip().startswith("# Parameters"):
            try:
                tree = ast.parse(src)
            except SyntaxError:
                return []
            return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)]
    return []


def parse_override(text: str) -> tuple[str, Any]:
    """`name=value` from the command line; the value is read as YAML (`[1, 8]`, `true`, `0.5`)."""
    if "=" not in text:
        raise ParamsError(f"--set expects name=value, got {quote(text)}")
    name, raw = text.split("=", 1)
    try:
        return name.strip(), load_yaml(raw, f"--set {name.strip()}")
    except yaml.YAMLError as e:
        raise ParamsError(f"--set {quote(text)}: the value is not valid YAML: {one_line(e)}") from None


def one_line(e: Exception) -> str:
    """A YAML parser error in one line (its own text spans several, with a caret drawing)."""
    mark = getattr(e, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{getattr(e, 'problem', None) or e}{where}"


def notebook_annotation(type_name: str) -> str:
    """The builtin a notebook's parameters cell annotates a field with (an enum is its string value), so the
    cell runs without imports and `papermill --help-notebook` shows the type."""
    return type_name if type_name in ("int", "float", "str", "bool", "list", "dict") else "str"


def parameters_cell(names: list[str]) -> str:
    """A notebook's parameters cell for these Params fields: annotated, the default, the field's help."""
    rows = {r["name"]: r for r in describe()}
    return "\n".join(f"{n}: {notebook_annotation(rows[n]['type'])} = "
                     f"{json.dumps(rows[n]['default']) if isinstance(rows[n]['default'], str) else repr(rows[n]['default'])}"
                     f"  # {rows[n]['help']}" for n in names)


def describe() -> list[dict[str, Any]]:
    """Name, type, default and help of every parameter, for `scaleproof params` and the docs."""
    rows = []
    for name, f in Params.model_fields.items():
        ann = f.annotation
        type_name = getattr(ann, "__name__", str(ann)).replace("typing.", "")
        default = f.default.value if isinstance(f.default, Enum) else f.default
        if isinstance(default, list):
            default = [d.value if isinstance(d, Enum) else d for d in default]
        bounds = RANGES.get(name) or ELEMENT_RANGES.get(name)
        rows.append({"name": name, "type": type_name, "default": default, "help": f.description,
                     **({"range": span(*bounds)} if bounds else {})})
    return rows
