"""Inductor freezing on or off for the ResNet-50 FP16 torch.compile engine, measured the way 05_benchmark measures
it: LoadGen Offline through the dynamic batcher (max batch 256), three runs per setting, in one process after one
export, so both settings meet the same card and host. Also the engine's load time on a cold and on a warm compile
cache (a fresh cache folder per setting; the second load reads what the first wrote).

    python benchmarks/device/freezing_probe.py OUT_DIR
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from scaleproof.bench.loadgen import LoadgenSettings, Scenario, run_scenario
from scaleproof.config import Params
from scaleproof.datasets import splits_for
from scaleproof.io_spec import ModelIO
from scaleproof.isolate import call_isolated
from scaleproof.stages import build, calibrate, export


def offline_runs(run_dir: str, entry: dict, x, log_dir: str) -> dict:
    """In a fresh process: load the engine (from the compile cache build filled), then three Offline runs."""
    t0 = time.perf_counter()
    engine = build.load_engine(Path(run_dir), entry)
    load = {"load_seconds": round(time.perf_counter() - t0, 1), "compile_cache": engine.info().get("compile_cache")}
    cfg = LoadgenSettings(min_duration_s=2.0, min_queries=100, sla_p99_ms=15.0, max_batch=256, max_delay_ms=2.0)
    qps = [round(run_scenario(engine, x, Scenario.offline, cfg, Path(log_dir) / f"offline-{k}", expected_qps=30000).qps)
           for k in range(3)]
    engine.close()
    return {**load, "offline_qps": qps}


def main() -> None:  # spawned workers import this module: the work must not run at import
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    base = dict(model="zoo:resnet50", precisions=["fp16"], torch_modes=["compile"], max_batch=256,
                batch_sizes=[1, 256], val_samples=64, calib_samples=32)
    params = Params(run_dir=tempfile.mkdtemp(), **base)
    exported = export.run(params)
    calibrate.run(params)  # build reads its result (the INT8 model is not used here)
    x = splits_for(params, ModelIO.model_validate(exported["io"]), exported["dataset"])["val"].x
    results = []
    for freezing in (False, True):
        p = params.with_(compile_freezing=freezing, compile_cache_dir=tempfile.mkdtemp())
        t0 = time.perf_counter()
        built = build.run(p)  # compiles into the empty cache folder: a cold build
        entry = next(e for e in built["engines"] if e["name"] == "torch-fp16-compile")
        row = {"compile_freezing": freezing, "build_seconds": round(time.perf_counter() - t0, 1),
               "build_compile": entry.get("compile"),
               **call_isolated(offline_runs, str(p.run_path), entry, x, str(out_dir / f"freezing-{freezing}"),
                               what="offline runs")}
        print(json.dumps(row), flush=True)
        results.append(row)
    (out_dir / "freezing_probe.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
