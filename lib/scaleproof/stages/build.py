"""Stage 03: build the engines this machine can run, into the per-device store of the run."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import hardware, paths, stages
from ..backends import by_name
from ..backends.base import BuildInputs, BuildJob, Engine, EngineSkipped
from ..config import Backend, Params, Precision, TorchMode
from ..engine_store import read_sidecar
from ..errors import EngineMismatchError, ParamsError
from ..io_spec import ModelIO
from ..isolate import call_isolated
from ..provenance import read_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSpec:
    backend: str
    precision: str
    mode: str = ""  # torch: eager, cuda_graph or compile

    @property
    def name(self) -> str:
        return "-".join(p for p in (self.backend, self.precision, self.mode) if p and p != "eager")


BASELINE = EngineSpec("torch", "fp32", "eager")  # every run measures PyTorch FP32 eager as the baseline


@dataclass(frozen=True)
class Capabilities:
    cuda: bool
    tensorrt: bool
    ort_cuda: bool = False  # ONNX Runtime with its CUDA provider (onnxruntime-gpu)

    @classmethod
    def detect(cls) -> Capabilities:
        from ..backends import onnxruntime_cuda

        cuda = hardware.has_cuda()
        return cls(cuda=cuda, tensorrt=cuda and importlib.util.find_spec("tensorrt") is not None,
                   ort_cuda=cuda and onnxruntime_cuda.available())


def plan_engines(backend: Backend, precisions: list[Precision], caps: Capabilities,
                 torch_modes: list[TorchMode] = (TorchMode.eager,),
                 onnx_gpu: bool = False) -> tuple[list[EngineSpec], list[dict[str, str]]]:
    """Which engines to build here, and why each asked-for one is skipped.

    `auto` picks the fastest backend the machine has: TensorRT on a GPU with TensorRT, PyTorch CUDA on
    a GPU without it, ONNX Runtime on CPU. The PyTorch FP32 eager baseline is always built. `onnx_gpu` adds
    ONNX Runtime CUDA engines of the exported model (FP32, FP16) beside them.
    """
    device = "cuda" if caps.cuda else "cpu"
    if backend is Backend.auto:
        chosen = "tensorrt" if caps.tensorrt else ("torch" if caps.cuda else "onnxruntime")
    else:
        chosen = backend.value
        if chosen == "tensorrt" and not caps.tensorrt:
            raise ParamsError("backend=tensorrt needs TensorRT and a CUDA GPU, and this machine has "
                              f"{'no TensorRT' if caps.cuda else 'no CUDA GPU'}; use backend=auto")
    modes = [m.value for m in torch_modes] if chosen == "torch" else [""]
    table = by_name(chosen).supported(device)  # precision -> modes; "" is the only mode of backends without modes
    planned, skipped = [BASELINE], []
    for p in (p.value for p in precisions):
        for m in modes:
            spec = EngineSpec(chosen, p, m)
            if m in table.get(p, set()):
                if spec not in planned:
                    planned.append(spec)
            else:
                what = f"{p} {m}".strip()
                skipped.append({"engine": spec.name, "reason": f"{chosen} on {device} does not build {what}"})
    if onnx_gpu:
        from ..backends import onnxruntime_cuda

        why = None if caps.ort_cuda else onnxruntime_cuda.refusal(device)
        for p in (p.value for p in precisions if p.value in ("fp32", "fp16")):
            spec = EngineSpec(onnxruntime_cuda.NAME, p)
            if why:
                skipped.append({"engine": spec.name, "reason": why})
            elif spec not in planned:
                planned.append(spec)
    return planned, skipped


def engine_store(run_dir: Path) -> Path:
    return paths.stage_dir(run_dir, "03_build") / "engines"


def load_engine(run_dir: Path, entry: dict[str, Any], threads: int = 0) -> Engine:
    """Load a built engine of this run, checked against its sidecar and its source artifact."""
    sidecar = paths.stage_dir(run_dir, "03_build") / entry["sidecar"]
    recorded = read_json(sidecar).get("engine_sha256") if sidecar.is_file() else None
    if recorded is not None and recorded != entry["engine_sha256"]:  # a sidecar rewritten to match another engine
        raise EngineMismatchError(f"{entry['name']}: its sidecar names engine sha256 {recorded[:16]}… but build.json "
                                  f"recorded {entry['engine_sha256'][:16]}… when it was built; rebuild (03_build)")
    return by_name(entry["backend"]).load(sidecar, threads=threads, source_sha256=entry["source_sha256"])


def compile_into_cache(run_dir: str, entry: dict[str, Any], threads: int) -> dict[str, Any]:
    """Load a torch.compile engine once (in a child process): its kernels land in the compile cache, and
    what that took is recorded in build.json."""
    engine = load_engine(Path(run_dir), entry, threads)
    try:
        info = engine.info()
    finally:
        engine.close()
    return {**info.get("compile_cache", {}), "load_seconds": info.get("load_seconds")}


def run(params: Params) -> dict[str, Any]:
    exported = stages.require(params, "01_export")
    run_dir = params.run_path
    onnx_by_precision = {"fp32": paths.stage_dir(run_dir, "01_export") / exported["onnx"]}
    calibrated = stages.require(params, "02_calibrate")
    if calibrated.get("int8_onnx"):
        onnx_by_precision["int8"] = paths.stage_dir(run_dir, "02_calibrate") / calibrated["int8_onnx"]
    if calibrated.get("fp16"):
        onnx_by_precision["fp16"] = paths.stage_dir(run_dir, "02_calibrate") / calibrated["fp16"]["fp16_onnx"]
    inputs = BuildInputs(
        model_spec=params.model, io=ModelIO.model_validate(exported["io"]),
        onnx_by_precision={k: str(v) for k, v in onnx_by_precision.items()}, max_batch=params.max_batch,
        threads=params.threads, weights=params.weights,
        weights_strict=params.weights_strict, weights_ignore=tuple(params.weights_ignore),
    )
    caps = Capabilities.detect()
    planned, skipped = plan_engines(params.backend, params.precisions, caps, params.torch_modes, params.onnx_gpu)
    store = engine_store(run_dir)
    build_dir = paths.stage_dir(run_dir, "03_build")
    engines = []
    for spec in planned:
        job = BuildJob(inputs, spec.precision, spec.mode, store, params,
                       int8_dynamic=calibrated.get("quant_scope") == "dynamic")
        module = by_name(spec.backend)
        try:
            sidecar_path = module.build_engine(job)
        except EngineSkipped as e:
            skipped.append({"engine": spec.name, "reason": str(e)})
            continue
        sc = read_sidecar(sidecar_path)
        engines.append({
            "name": sc.name, "backend": spec.backend, "precision": spec.precision,
            "sidecar": str(sidecar_path.relative_to(build_dir)), "engine_sha256": sc.engine_sha256,
            "source": sc.source, "source_sha256": sc.source_sha256, "build_seconds": sc.build_seconds,
            "size_bytes": (sidecar_path.parent / sc.engine_file).stat().st_size,
            "mode": spec.mode, "baseline": spec == BASELINE,
            **module.build_record(sc),
        })
        if spec.mode == "compile":  # compile once here, into the cache every later load of this engine reads
            try:
                engines[-1]["compile"] = call_isolated(compile_into_cache, str(run_dir), engines[-1], params.threads,
                                                       what=f"compiling {sc.name}")
            except Exception as e:  # noqa: BLE001 - a crash or an Inductor error fails this engine, not the stage
                engines.pop()
                skipped.append({"engine": sc.name, "reason": f"torch.compile failed: {str(e).splitlines()[0][:300]}"})
                logger.warning(f"{sc.name}: torch.compile failed: {e}")
                continue
            logger.info(f"compiled {sc.name}: cache {engines[-1]['compile'].get('outcome')}, "
                  f"{engines[-1]['compile'].get('load_seconds')} s")
        logger.info(f"built {sc.name} in {sc.build_seconds:.2f} s")
    result = {
        "device_slug": hardware.device_slug(),
        "capabilities": {"cuda": caps.cuda, "tensorrt": caps.tensorrt, "onnxruntime_cuda": caps.ort_cuda},
        "backend_requested": params.backend.value,
        "baseline": BASELINE.name,
        "engines": engines,
        "skipped": skipped,
    }
    stages.write_result(run_dir, "03_build", result, params)
    return result
