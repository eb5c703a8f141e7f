"""Typed, versioned stage results: the contract between the stages, and what an auditor reads.

Each stage writes one JSON file checked against its model here (`stages.write_result`), and a later stage
reads it back through the same model (`stages.require_typed`; `stages.require` still gives the checked dict). A model names the fields later stages and the report rely on,
with their types; what a stage records beyond them (search runs, sweeps, per-output errors …) is kept as
written (`extra="allow"`) and described in the stage's own docs. `FORMAT` is the version of this contract: a
result file of another format is refused with what to do, never read with guessed keys. The JSON Schemas of
these models are in docs/schemas/ (`python scripts/export_result_schemas.py` writes them; a test keeps them in
step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import paths
from .errors import ArtifactError

FORMAT = 1  # raise when a field's meaning or type changes; older files are then refused, not misread


class Record(BaseModel):
    """A part of a result: the named fields typed, anything else kept as written."""

    model_config = ConfigDict(extra="allow")


class EngineReason(Record):
    """An engine left out of a stage, and why."""

    engine: str
    reason: str


class StageResult(Record):
    stage: str = Field(description="the stage that wrote it, e.g. 05_benchmark")
    result_format: int = Field(FORMAT, description="version of this result contract (scaleproof.results.FORMAT)")
    made_with: dict[str, Any] = Field(default_factory=dict,
                                      description="the parameters the stage's notebook declares, with their values")


# 01_export ------------------------------------------------------------------------------------------------------
class OutputParity(Record):
    """One output of the ONNX model against PyTorch's on the same inputs."""

    samples: int
    max_abs_err: float | None
    mean_abs_err: float | None
    max_rel_err: float | None = Field(description="largest |ONNX - PyTorch| over the output's scale (max |PyTorch|)")
    mean_rel_err: float | None = Field(description="mean |ONNX - PyTorch| over PyTorch's mean deviation between "
                                                   "samples")
    finite: bool = Field(description="whether every ONNX output value is finite")
    top1_agreement: float | None = Field(None, description="share of samples with the same argmax (class outputs)")


class Parity(Record):
    samples: int
    max_rel_err: float | None = Field(description="the largest max_rel_err over the outputs (what parity_atol bounds)")
    finite: bool
    outputs: dict[str, OutputParity] = Field(description="per output name")


class ExportResult(StageResult):
    model: str = Field(description="the model spec: zoo:NAME, hf:…, or module:function")
    weights_sha256: str | None = Field(None, description="sha256 of the weights file the model was loaded with")
    io: dict[str, Any] = Field(description="the model's inputs and outputs (names, dtypes, shapes, dynamic dims)")
    dataset: str | None = Field(None, description="the data the run used: digits, npz, images, …")
    input_names: list[str]
    output_names: list[str]
    onnx: str = Field(description="the exported FP32 ONNX file, relative to the stage folder")
    onnx_sha256: str
    onnx_input_dims: dict[str, list[str | int]] = Field(
        description="each ONNX input's dimensions: a name for a dynamic one (batch, …), else its size")
    onnx_nodes: int = Field(description="nodes in the exported ONNX graph")
    opset: int
    exporter: str = Field(description="the exporter asked for: dynamo or torchscript")
    weights: str | None = Field(description="the weights the model was loaded with, in words (file and sha256)")
    parameters: int = Field(description="parameters of the PyTorch model")
    parity: Parity = Field(description="ONNX Runtime against PyTorch on the same inputs")
    reference_degenerate: dict[str, str] = Field(
        description="outputs whose FP32 reference cannot judge accuracy (non-finite, near zero, constant), with why")


# 02_calibrate ---------------------------------------------------------------------------------------------------
class Adjusted(Record):
    """A parameter the data could not honour, and the value used instead."""

    parameter: str
    asked: int
    used: int
    why: str


class Judged(Record):
    """A model judged against the FP32 reference with 04_validate's gate (`quantization.sensitivity.summary`):
    which figures are present depends on the metric."""

    passed: bool | None = None
    reason: str | None = None
    metric: str | None = Field(None, description="top1, agreement, cosine, auc, error or user")
    top1: float | None = None
    top1_delta_pts: float | None = Field(None, description="top-1 against the FP32 reference's, in points")
    top1_agreement: float | None = Field(None, description="share of samples with FP32's top-1 class")
    cosine_mean: float | None = None
    cosine_min: float | None = None
    score: float | None = Field(None, description="the user's metric on this model's outputs")
    ref_score: float | None = Field(None, description="the user's metric on the FP32 reference's outputs")
    auc: float | None = Field(None, description="ROC AUC of the one-wide score against the labels (metric auc)")
    ref_auc: float | None = Field(None, description="the FP32 reference's AUC")
    auc_delta_pts: float | None = Field(None, description="AUC against the FP32 reference's, in points (0.01 AUC)")
    logloss: float | None = Field(None, description="log loss of the score (its sigmoid where it is a logit)")
    ref_logloss: float | None = Field(None, description="the FP32 reference's log loss")
    output_err: float | None = Field(None, description="the judged output's error against FP32 (the gate's)")
    max_rel_err: float | None = Field(None, description="largest |model - FP32| over the output's scale")
    accuracy_cost_pts: float | None = Field(None, description="what the gate's metric lost against FP32, in points")
    crashed: bool | None = Field(None, description="true where the model crashed the runtime while judged")


class CpuBatchSpeed(Record):
    batch: int
    samples_per_s: float | None = None
    p50_ms: float | None = None
    valid: bool
    timing_reason: str


class CpuSpeed(Record):
    """ONNX Runtime on this CPU timed with the benchmark's harness and settings at the benchmark's batch sizes;
    `batch`, `samples_per_s` and `p50_ms` are the largest batch's."""

    batch: int
    samples_per_s: float | None = Field(description="None where the model could not be timed")
    p50_ms: float | None = None
    valid: bool
    timing_reason: str
    geomean_samples_per_s: float | None = Field(None, description="geometric mean of samples/s over the batch sizes: "
                                                                  "what the scope choice compares")
    per_batch: list[CpuBatchSpeed] | None = Field(None, description="each of the benchmark's batch sizes")


class SpeedCpu(Record):
    fp32: CpuSpeed
    int8: CpuSpeed


class SensitivityRow(Judged):
    """One node (or group of nodes) quantized alone, every other node FP32."""

    rank: int = Field(description="1: the most costly to quantize; groups not judged come last")
    group: str = Field(description="the node, or the first and last node of the group")
    nodes: list[str]
    op_types: list[str]
    judged: bool = Field(description="false where sensitivity_budget_s ran out before this group")


class MixedStep(Judged):
    groups_kept_fp32: int
    kept_fp32: list[str] = Field(description="the nodes kept in FP32 at this step")


class MixedPrecision(Record):
    """The most sensitive groups kept in FP32, one more at a time, until INT8 passes the gate."""

    passed: bool
    kept_fp32: list[str]
    steps: list[MixedStep]
    reason: str | None = Field(None, description="why it stopped without passing")


class MethodRow(Judged):
    """A calibration method of calib_compare: every node of the scope quantized with its ranges."""

    method: str
    percentile: float | None = Field(None, description="the percentile method's percentile")
    int8_cpu: CpuSpeed
    cache: str = Field(description="the calibration cache's status for this method: hit, miss, …")


class QdqSummary(Record):
    nodes: int
    quantize_nodes: int = Field(description="QuantizeLinear nodes")
    dequantize_nodes: int
    compute_nodes: int
    dynamic_quantize_nodes: int
    int8_nodes: int = Field(description="compute nodes that run in INT8")


class CalibCache(Record):
    status: str = Field(description="hit, miss, unused, …")
    reason: str


class Fp16Onnx(Record):
    """The FP16 ONNX model (float32 inputs and outputs), as `quantization.fp16.to_fp16` wrote it."""

    fp16_onnx: str
    fp16_onnx_sha256: str
    converter: str
    fp16_initializers: int
    initializers: int
    io_dtype: str


class Fp16Model(Judged, Fp16Onnx):  # Fp16Onnx's fields first, as written
    """The FP16 ONNX model and how it was judged."""


class CalibrateResult(StageResult):
    reference: str = Field(description="what the candidates are judged against")
    val_samples: int
    adjusted: list[Adjusted] = Field(description="sample counts the data could not honour")
    metric: str
    gate: dict[str, float | str] = Field(description="the bounds a model must keep, as the report prints them")
    reference_degenerate: str | None = Field(description="why the FP32 reference cannot judge accuracy, if so")
    statement: str = Field(description="the INT8 model in one sentence, as the report prints it")
    int8_onnx: str | None = Field(None, description="the INT8 (Q/DQ or dynamic) ONNX file, if one passed or was kept")
    int8_onnx_sha256: str | None = None
    int8_passed: bool | None = Field(None, description="whether the INT8 model passed the accuracy gate on CPU")
    int8: Judged | None = Field(None, description="the kept INT8 model, judged")
    quant_scope: str | None = Field(None, description="the quantized scope kept: all, matmul, dynamic, …")
    quantizer: str | None = Field(None, description="onnxruntime or modelopt")
    quantizer_version: str | None = None
    quantizer_requested: str | None = Field(None, description="the quantizer parameter: auto, onnxruntime or modelopt")
    format: str | None = Field(None, description="the INT8 format in words (QDQ S8S8, dynamic INT8, …)")
    int8_format: str | None = Field(None, description="s8s8, s8s8-reduced-range or u8u8 (config.Int8Format)")
    int8_format_reason: str | None = Field(None, description="why that format: pinned, or the CPU's instruction set")
    cpu_isa: str | None = Field(None, description="the CPU's instruction-set level the format was chosen for")
    calib_method: str | None = None
    calib_settings: dict[str, Any] | None = Field(None, description="the calibrator's settings (part of the cache key)")
    per_channel: bool | None = None
    calib_samples: int | None = None
    calib_data_sha256: str | None = None
    calib_cache: CalibCache | None = None
    kept_fp32: list[str] | None = Field(None, description="the nodes kept in FP32 in the INT8 model")
    sensitivity: list[SensitivityRow] | None = Field(None, description="nodes or groups ranked by accuracy cost")
    mixed_precision: MixedPrecision | None = Field(None, description="None where INT8 passed with every node of "
                                                                     "its scope, or mixed precision did not run")
    speed_cpu: SpeedCpu | None = Field(None, description="FP32 and INT8 on this CPU, timed as the benchmark times "
                                                         "engines, at its batch sizes")
    embedding_tables: dict[str, Any] | None = Field(None, description="the model's embedding tables: rows, FP32 bytes, "
                                                    "bytes in the INT8 model (per-row INT8) and the largest row error")
    methods: list[MethodRow] | None = Field(None, description="the calibration methods compared (calib_compare)")
    qdq: QdqSummary | None = Field(None, description="what the INT8 model holds")
    fp16: Fp16Model | None = Field(None, description="the FP16 ONNX model and its accuracy, where built")
    fp16_statement: str | None = Field(None, description="why no FP16 ONNX model was built, where none was")


# 03_build -------------------------------------------------------------------------------------------------------
class TrtLayers(Record):
    """The engine inspector's layers against the ONNX graph."""

    onnx_nodes: int | None = None
    engine_layers: int | None = None
    fused_layers: int | None = Field(None, description="engine layers TensorRT formed from several network layers")
    network_layers_in_fused: int | None = None
    reformat_layers: int | None = Field(None, description="reformat kernels fusion did not remove")


class TrtTimingCache(Record):
    loaded: str | None = Field(None, description="hit, miss, corrupt, …")


class TrtBuild(Record):
    """How a TensorRT engine was built: precision typing, layers, timing cache, profile."""

    typing: str | None = Field(None, description="strong (Q/DQ and casts in the ONNX) or weak (builder flags)")
    layers: TrtLayers | None = None
    timing_cache: TrtTimingCache | None = None
    profile: dict[str, Any] | None = Field(None, description="the optimization profile's min/opt/max shapes")


class BuiltEngine(Record):
    name: str
    backend: str
    precision: str
    mode: str = Field(description="the torch backend's eager, cuda_graph or compile; empty elsewhere")
    baseline: bool
    sidecar: str = Field(description="the engine's sidecar, relative to the stage folder")
    engine_sha256: str
    source: str
    source_sha256: str
    build_seconds: float
    size_bytes: int
    tensorrt: TrtBuild | None = Field(None, description="TensorRT engines only")
    low_precision: dict[str, Any] | None = Field(
        None, description="torchao's int8, fp8 and int8-weight-only engines: the Linear layers quantized, kept and left "
                          "alone (with why), their share of one sample's FLOPs, the convolutions' share (not quantized)")


class BuildResult(StageResult):
    device_slug: str = Field(description="the device the engines were built for (e.g. h100, cpu-x86_64)")
    backend_requested: str = Field(description="the backend parameter: auto, onnxruntime, torch or tensorrt")
    baseline: str
    engines: list[BuiltEngine]
    skipped: list[EngineReason] = Field(description="engines asked for and not built, each with its reason")


# 04_validate ----------------------------------------------------------------------------------------------------
class ValidatedEngine(Record):
    engine: str
    backend: str
    precision: str
    passed: bool
    reason: str
    metric: str | None = Field(None, description="top1, agreement, cosine, auc or user")
    output_err: float | None = Field(None, description="the judged output's error against FP32 (the gate's)")
    top1: float | None = None
    top1_delta_pts: float | None = None
    top1_agreement: float | None = None
    cosine_mean: float | None = None
    auc: float | None = Field(None, description="ROC AUC of the one-wide score against the labels (metric auc)")
    auc_delta_pts: float | None = Field(None, description="AUC against the FP32 reference's, in points")
    logloss: float | None = Field(None, description="log loss of the score")
    score: float | None = Field(None, description="the user's metric on this engine's outputs")
    ref_score: float | None = Field(None, description="the user's metric on the FP32 reference's outputs")
    max_rel_err: float | None = Field(None, description="largest |engine - FP32| over the output's scale")
    nonfinite_outputs: int | None = Field(None, description="NaN/Inf values in the engine's outputs")


class ValidateResult(StageResult):
    reference: str
    samples: int = Field(description="validation samples every engine was judged on")
    metric: str
    metric_words: str = Field(description="the metric in words, as the report prints it")
    judged_output: str = Field(description="the output the metric and the gate judge")
    gate: dict[str, float | str] = Field(description="the bounds an engine must keep, as the report prints them")
    reference_degenerate: str | None = Field(description="why the FP32 reference cannot judge accuracy, if so")
    engines: list[ValidatedEngine]
    passed: list[str] = Field(description="the engines that passed the gate")
    failed: list[dict[str, Any]] = Field(description="the engines that did not, each with its reason")

    def engine(self, name: str) -> ValidatedEngine:
        return next(e for e in self.engines if e.engine == name)


# 05_benchmark ---------------------------------------------------------------------------------------------------
class Flag(Record):
    rule: str = Field(description="an anomaly rule of anomalies.RULES")
    detail: str


class LoadgenRun(Record):
    """One MLPerf LoadGen run (`bench.loadgen.LoadgenRun`); a figure LoadGen did not give is None."""

    scenario: str = Field(description="single_stream, offline or server")
    valid: bool = Field(description="LoadGen's verdict (and the P99 bound, for Server)")
    reason: str
    target_qps: float | None = Field(description="the Server scenario's target; None for the others")
    qps: float | None = Field(description="completed samples per second (Offline: the result; Server: what was served)")
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    queries: int
    batch_sizes: dict[int, int] = Field(description="batch size -> batches of that size run")
    log_dir: str = Field(description="LoadGen's logs of this run, relative to the run folder")
    batching: str
    min_duration_s: float | None = Field(None, description="LoadGen's effective minimum duration")


class PeakSearch(Record):
    """A bounded search for the highest Server QPS that is VALID at the P99 bound."""

    peak_qps: float | None = Field(description="highest target QPS with a VALID run; None if none was VALID")
    peak_run: LoadgenRun | None
    runs: list[LoadgenRun]
    reason: str


class Batcher(Record):
    """The dynamic batcher configuration an engine's capacity was measured with."""

    max_batch: int
    max_queue_delay_ms: float
    chosen_by: str


class SweepPoint(Record):
    """One batcher configuration of the sweep, and its peak search."""

    max_batch: int
    max_queue_delay_ms: float
    search: PeakSearch


class ServerMeasurement(Record):
    """LoadGen's Server scenario for one engine: the batcher sweep, the peak searches, the confirmation run."""

    batcher: Batcher
    sweep: list[SweepPoint] = Field(description="every swept configuration; empty without a sweep")
    dynamic: PeakSearch = Field(description="the peak search with the chosen batcher")
    dynamic_repeats: list[PeakSearch] = Field(description="the further independent searches (run-to-run range)")
    confirmation: dict[str, Any] | None = Field(description="the confirmation run the priced capacity comes from")
    static: PeakSearch = Field(description="fixed batches of static_batch, no queue window (the comparison)")


class Timing(Record):
    """The timing harness at one batch size (`bench.timing.Timing`); NaN figures are written as None."""

    batch: int
    iterations: int
    duration_s: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    cov: float | None = Field(description="CoV of the mean latency over consecutive blocks (None: too few iterations)")
    latency_cov: float | None
    throughput: float | None = Field(description="samples per second over the timed wall time")
    valid: bool
    reason: str


class Capacity(Record):
    qps: float = Field(description="what LoadGen achieved in the VALID confirmation run: the priced capacity")
    p99_ms: float
    log_dir: str = Field(description="the LoadGen logs of that run, relative to the run folder")
    batching: str
    qps_upper: float | None = Field(None, description="the upper end of the capacity's range")
    range_source: str | None = None


class BenchmarkedEngine(Record):
    engine: str
    backend: str
    precision: str
    baseline: bool
    validated: bool
    memory: dict[str, Any]
    timings: list[Timing] = Field(description="the timing harness per batch size")
    single_stream: LoadgenRun
    offline: LoadgenRun
    server: ServerMeasurement = Field(description="searches, sweep and the batcher configuration the capacity used")
    capacity: Capacity | None = Field(description="None when no Server capacity could be confirmed")
    capacity_reason: str | None = None
    not_confirmed: str | None = Field(None, description="why no confirmation run was made (confirm: leaders and the "
                                      "engine clearly behind the leader's searches); None where one was")
    flags: list[Flag] | None = Field(None, description="anomaly checks that fired (None: not checked)")
    remeasured: dict[str, Any] | None = None
    second_look: str | None = Field(None, description="why a flagged engine was not measured a second time")

    def memory_mb(self) -> float | None:
        """GPU peak allocation where measured, else the process's peak RSS."""
        return self.memory.get("gpu_peak_allocated_mb", self.memory.get("process_peak_rss_mb"))


class Scaling(Record):
    engine: str | None = Field(None, description="the engine scaled: the best priced one")
    device_kind: str | None = Field(None, description="gpu, or cpu (CPU workers standing in for GPUs)")
    devices: list[str] = Field(default_factory=list)
    skipped: str | None = Field(None, description="why no scaling was measured")
    peak_qps: dict[str, float | None] | None = Field(None, description="Server capacity by device count ('1', 'N')")
    scaling_factor: float | None = Field(None, description="capacity(N) / (N x capacity(1)); None if not measured")
    factor_range: list[float] | None = None
    method: str | None = None


class Harness(Record):
    """The timing harness's settings."""

    warmup: int = Field(description="untimed iterations before timing each batch size")
    min_repeats: int
    min_time_s: float
    max_cov: float = Field(description="largest spread (CoV of block means) of a VALID timing")
    timer: str
    isolation: str
    garbage_collection: str
    memory: str = Field(description="what the memory figures measure")


class Loadgen(Record):
    """LoadGen and peak-search settings of the run."""

    min_duration_s: float
    min_queries: int
    sla_p99_ms: float = Field(description="the P99 latency bound of the Server scenario")
    batcher_max_batch: int
    max_queue_delay_ms: float
    static_batch: int
    peak_search_runs: int
    peak_tolerance: float = Field(description="searches bisect until VALID and INVALID targets are this close")
    peak_repeats: int = Field(description="independent peak searches per engine")
    confirm_steps: int
    confirm: str = Field("all", description="which engines were confirmed: leaders or all (results before the "
                                            "switch confirmed all)")
    server_duration_budget_s: float | None = Field(None, description="longest a Server run could last to meet early "
                                                                     "stopping at a low rate")
    sweep_max_batch: list[int] = Field(description="batcher max batches swept (empty: no sweep)")
    sweep_queue_delay_ms: list[float] = Field(description="batcher queue delays swept (empty: no sweep)")
    samples: int = Field(description="distinct samples LoadGen draws queries from")


class Pricing(Record):
    """The pricing floor: how long a confirmation run must last for its capacity to be priced."""

    floor_s: float
    default_floor_s: float = Field(description="the floor on this kind of device (10 s CPU, 30 s GPU)")
    exploratory: str | None = Field(description="why the run is exploratory (its floor is under the default); "
                                                 "None for a priced run")


class BenchmarkResult(StageResult):
    device_slug: str
    hardware: dict[str, Any] | None = None
    threads: int = Field(description="CPU threads each engine ran with")
    harness: Harness
    loadgen: Loadgen = Field(description="LoadGen and search settings: sla_p99_ms, peak_repeats, …")
    pricing: Pricing | None = Field(None, description="the pricing floor, and why the run is exploratory")
    capacity_method: str
    anomaly_rules: dict[str, str] = Field(description="anomaly rule -> what it means (anomalies.RULES)")
    baseline: str
    engines: list[BenchmarkedEngine]
    excluded: list[dict[str, Any]]
    scaling: Scaling | None = None


# 06_cost_report -------------------------------------------------------------------------------------------------
class FleetCost(Record):
    """Instances and cost for a load (`cost.fleet_cost`)."""

    instances: int
    monthly_usd: float
    annual_usd: float
    usd_per_1m: float = Field(description="USD per 1M inferences of one instance at capacity x utilization")
    fleet_usd_per_1m: float = Field(description="annual fleet cost over the year's requests, per 1M")


class GrowthScenario(FleetCost):
    growth: float = Field(description="traffic as a multiple of today's")


class PriceScenario(FleetCost):
    price_change: float = Field(description="relative change of the hourly price (-0.2: 20% cheaper)")


class PriceRange(Record):
    """Low and high case from the capacity's range (and, for an instance of several accelerators, the scaling
    factor's): `qps` and `accelerator_qps` are [low capacity, high capacity]; instances, annual_usd and usd_per_1m
    are [at the high capacity, at the low one] (cheapest first)."""

    source: str | None
    qps: list[float] = Field(description="capacity per instance, low and high")
    accelerator_qps: list[float] | None = Field(None, description="capacity per accelerator, low and high")
    instances: list[int]
    annual_usd: list[float]
    usd_per_1m: list[float]


class Remeasured(Record):
    """The second measurement of an engine that an anomaly check flagged."""

    first_flags: list[Flag] = Field(description="what the first measurement was flagged for")
    still_flagged: bool
    first_capacity: Capacity | None = None
    crashed: str | None = Field(None, description="the second measurement crashed: the first one stands")
    what: str | None = Field(None, description="what was measured again: the whole engine, or only its confirmation")


class PricedEngine(Record):
    engine: str
    backend: str
    precision: str
    baseline: bool
    batching: str
    qps: float = Field(description="confirmed capacity per accelerator, as benchmark.json has it")
    p99_ms: float = Field(description="P99 latency of the confirmation run the capacity comes from")
    loadgen_log: str
    memory_mb: float | None = Field(description="peak GPU allocation where measured, else the process's peak RSS")
    gpu_reserved_mb: float | None = Field(None, description="GPU memory the caching allocator held after the "
                                                            "measurements (allocated and cached)")
    gpu_weights_mb: float | None = Field(None, description="the engine's weights on the GPU (quantized tensors at "
                                                           "their stored size)")
    top1_delta_pts: float | None = None
    top1_agreement: float | None = None
    accuracy: str = Field(description="the engine's accuracy against FP32, in words")
    flags: list[Flag] | None = None
    remeasured: Remeasured | None = Field(description="None where the engine was measured once")
    second_look: str | None = Field(None, description="why a flagged engine was not measured a second time")
    bench_index: int = Field(description="the engine's index in benchmark.json's engines")
    instance_qps: float
    instances: int
    monthly_usd: float
    annual_usd: float
    usd_per_1m: float
    fleet_usd_per_1m: float
    range: PriceRange | None = Field(None, description="None where the capacity has no range")
    scenarios: list[GrowthScenario] = Field(description="one per growth multiple")
    price_scenario: PriceScenario
    cost_share_of_revenue: float | None = Field(None, description="annual cost over annual revenue "
                                                                  "(where revenue_per_1k is set)")
    speedup_vs_baseline: float | None = Field(None, description="capacity over the baseline's (engines other than "
                                                                "the baseline, where it is priced)")
    speedup_range: list[float] | None = Field(None, description="low and high case of the speed-up")
    annual_savings_usd: float | None = Field(None, description="the baseline's annual cost minus this engine's")
    annual_savings_range: list[float] | None = Field(None, description="low and high case of the savings")
    traffic_multiple_same_budget: float | None = Field(None, description="traffic the baseline's budget serves "
                                                                         "with this engine, as a multiple")


class Gpu(Record):
    name: str
    compute_capability: str


class Cpu(Record):
    model: str
    usable_cores: int | None = Field(description="cores this process may run on")
    isa_level: str | None = Field(None, description="the instruction-set level that decides INT8 kernels "
                                                    "(avx2, avx512-vnni, amx, neon-dotprod, …)")


class Hardware(Record):
    """The machine the benchmark measured (`hardware.gpu_info`, `hardware.cpu_info`)."""

    gpu: Gpu | None = None
    cpu: Cpu | None = None


class Price(Record):
    """The price table row the engines are priced at (`cost.PriceRow`)."""

    id: str
    accelerator: str
    offer: str
    usd_per_hour: float = Field(description="per accelerator")
    source: str
    as_of: str
    confidence: str
    matches: str = Field(description="substring of a device slug this row prices when instance is 'auto'")
    table: str = Field(description="the price table the row comes from")


class InstanceScaling(Record):
    """How per-accelerator capacity becomes an instance's (`cost.instance_scaling`)."""

    accelerators_per_instance: int
    factor: float = Field(description="the scaling factor applied: measured, else 1.0 (linear)")
    source: str = Field(description="where the factor comes from, in words")
    usd_per_instance_hour: float
    factor_range: list[float] | None = None
    measured: bool | None = Field(None, description="false where scaling beyond what was measured is assumed")
    measured_devices: int | None = None
    measured_factor: float | None = Field(None, description="the factor as measured; `factor` is it, priced at "
                                                            "no more than 1")
    measured_factor_range: list[float] | None = None


class Assumptions(Record):
    """The traffic, cost and method assumptions behind every cost figure."""

    daily_requests: float
    peak_to_average: float
    peak_qps: float = Field(description="daily_requests / 86,400 x peak_to_average")
    target_utilization: float
    redundancy: int = Field(description="spare instances beyond what the peak needs (1: N+1)")
    growth: list[float]
    price_change: float
    revenue_per_1k: float
    hours_per_year: int
    capacity: str = Field(description="how the priced capacity was measured (benchmark.json's capacity_method)")
    sla_p99_ms: float
    inference: str
    scaling: InstanceScaling
    range: str = Field(description="where the ranges of the figures come from")


class Claim(Record):
    """A figure the report states, with the file and key it is read from."""

    id: str
    text: str
    value: int | float | None
    source: str = Field(description="the file, relative to the run folder")
    key: str = Field(description="the path of the value in that file, e.g. engines[1].capacity.qps")


class Tie(Record):
    """Engines whose confirmed capacity ranges overlap the fastest engine's (`cost.headline_engine`)."""

    tied: list[str]
    rule: str
    words: str = Field(description="the tie and the ranges, as the report and the run's last lines say it")


class CostReport(StageResult):
    status: str
    exploratory: bool
    measured_hardware: Hardware | None = None
    price: Price
    anomaly_rules: dict[str, str] = Field(description="anomaly rule -> what it means (anomalies.RULES)")
    assumptions: Assumptions
    baseline: str | None
    best: str | None = Field(description="the headline engine, by best_rule")
    best_tie: Tie | None = Field(None, description="the engines tied with the fastest (overlapping capacity ranges), "
                                                   "None where the fastest is ahead beyond the spread")
    best_rule: str | None = Field(None, description="how the headline engine is chosen (cost.HEADLINE_RULE)")
    engines: list[PricedEngine]
    excluded: list[EngineReason]
    claims: list[Claim]


MODELS: dict[str, type[StageResult]] = {
    "01_export": ExportResult,
    "02_calibrate": CalibrateResult,
    "03_build": BuildResult,
    "04_validate": ValidateResult,
    "05_benchmark": BenchmarkResult,
    "06_cost_report": CostReport,
}


def check(stage: str, raw: dict[str, Any], where: str | Path) -> StageResult:
    """`raw` as `stage`'s typed result; a result of another format version, or one that breaks the contract,
    is refused with what to do."""
    found = raw.get("result_format", 0)
    if found != FORMAT:
        raise ArtifactError(f"{where} is a {stage} result of format {found}; this scaleproof reads format {FORMAT}. "
                            f"Rerun stage {stage} (or the run) with this version, or read it with the scaleproof "
                            f"release that wrote it")
    try:
        return MODELS[stage].model_validate(raw)
    except ValidationError as e:
        raise ArtifactError(f"{where} does not hold a valid {stage} result: {e}") from None


def schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each stage's result, by result file name (export.json, …)."""
    return {f"{paths.stage_key(stage)}.json": model.model_json_schema() for stage, model in MODELS.items()}
