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


class StageResult(Record):
    stage: str = Field(description="the stage that wrote it, e.g. 05_benchmark")
    result_format: int = Field(FORMAT, description="version of this result contract (scaleproof.results.FORMAT)")
    made_with: dict[str, Any] = Field(default_factory=dict,
                                      description="the parameters the stage's notebook declares, with their values")


# 01_export ------------------------------------------------------------------------------------------------------
class ExportResult(StageResult):
    model: str = Field(description="the model spec: zoo:NAME, hf:…, or module:function")
    weights_sha256: str | None = Field(None, description="sha256 of the weights file the model was loaded with")
    io: dict[str, Any] = Field(description="the model's inputs and outputs (names, dtypes, shapes, dynamic dims)")
    dataset: str | None = Field(None, description="the data the run used: digits, npz, images, …")
    input_names: list[str]
    output_names: list[str]
    onnx: str = Field(description="the exported FP32 ONNX file, relative to the stage folder")
    onnx_sha256: str
    opset: int
    parity: dict[str, Any] = Field(description="ONNX Runtime against PyTorch on the same inputs")


# 02_calibrate ---------------------------------------------------------------------------------------------------
class CalibrateResult(StageResult):
    int8_onnx: str | None = Field(None, description="the INT8 (Q/DQ or dynamic) ONNX file, if one passed or was kept")
    int8_onnx_sha256: str | None = None
    int8_passed: bool | None = Field(None, description="whether the INT8 model passed the accuracy gate on CPU")
    quant_scope: str | None = Field(None, description="the quantized scope kept: all, matmul, dynamic, …")
    quantizer: str | None = Field(None, description="onnxruntime or modelopt")
    calib_method: str | None = None
    calib_data_sha256: str | None = None
    fp16: dict[str, Any] | None = Field(None, description="the FP16 ONNX model and its accuracy, where built")


# 03_build -------------------------------------------------------------------------------------------------------
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


class BuildResult(StageResult):
    device_slug: str = Field(description="the device the engines were built for (e.g. h100, cpu-x86_64)")
    baseline: str
    engines: list[BuiltEngine]
    skipped: list[dict[str, Any]] = Field(description="engines asked for and not built, each with its reason")


# 04_validate ----------------------------------------------------------------------------------------------------
class ValidatedEngine(Record):
    engine: str
    backend: str
    precision: str
    passed: bool
    reason: str
    metric: str | None = Field(None, description="top1, agreement, cosine or user")
    output_err: float | None = Field(None, description="the judged output's error against FP32 (the gate's)")
    top1: float | None = None
    top1_delta_pts: float | None = None
    top1_agreement: float | None = None
    cosine_mean: float | None = None
    score: float | None = Field(None, description="the user's metric on this engine's outputs")
    ref_score: float | None = Field(None, description="the user's metric on the FP32 reference's outputs")


class ValidateResult(StageResult):
    reference: str
    metric: str
    gate: dict[str, Any]
    engines: list[ValidatedEngine]
    passed: list[str] = Field(description="the engines that passed the gate")
    failed: list[dict[str, Any]] = Field(description="the engines that did not, each with its reason")

    def engine(self, name: str) -> ValidatedEngine:
        return next(e for e in self.engines if e.engine == name)


# 05_benchmark ---------------------------------------------------------------------------------------------------
class Flag(Record):
    rule: str = Field(description="an anomaly rule of anomalies.RULES")
    detail: str


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
    server: dict[str, Any] = Field(default_factory=dict,
                                   description="searches, sweep and the batcher configuration the capacity used")
    capacity: Capacity | None = Field(description="None when no Server capacity could be confirmed")
    capacity_reason: str | None = None
    flags: list[Flag] | None = Field(None, description="anomaly checks that fired (None: not checked)")
    remeasured: dict[str, Any] | None = None

    def memory_mb(self) -> float | None:
        """GPU peak allocation where measured, else the process's peak RSS."""
        return self.memory.get("gpu_peak_allocated_mb", self.memory.get("process_peak_rss_mb"))


class Scaling(Record):
    engine: str | None = Field(None, description="the engine scaled: the best priced one")
    devices: list[str] = Field(default_factory=list)
    skipped: str | None = Field(None, description="why no scaling was measured")
    scaling_factor: float | None = None
    factor_range: list[float] | None = None


class BenchmarkResult(StageResult):
    device_slug: str
    hardware: dict[str, Any] | None = None
    loadgen: dict[str, Any] = Field(description="LoadGen and search settings: sla_p99_ms, peak_repeats, …")
    pricing: dict[str, Any] | None = Field(None, description="the pricing floor, and why the run is exploratory")
    capacity_method: str
    engines: list[BenchmarkedEngine]
    excluded: list[dict[str, Any]]
    scaling: Scaling | None = None


# 06_cost_report -------------------------------------------------------------------------------------------------
class PricedEngine(Record):
    engine: str
    backend: str
    precision: str
    baseline: bool
    qps: float = Field(description="confirmed capacity per accelerator, as benchmark.json has it")
    instance_qps: float
    instances: int
    annual_usd: float
    usd_per_1m: float
    flags: list[Flag] | None = None


class CostReport(StageResult):
    status: str
    exploratory: bool
    price: dict[str, Any]
    assumptions: dict[str, Any]
    baseline: str | None
    best: str | None
    engines: list[PricedEngine]
    excluded: list[dict[str, Any]]
    claims: list[dict[str, Any]]


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
