"""Two-GPU scaling of the ResNet-50 FP16 torch.compile engine, without the rest of the chain (which does not fit
one 10-minute device call together with the baseline and the sweep). Same library code as 05_benchmark's
scaling step: one worker process per GPU loading the engine from the compile cache, one LoadGen run over all,
`repeats` peak searches per GPU count and a confirmation run of at least `confirm_s` seconds.

    python benchmarks/device/scaling_probe.py OUT_DIR [max_batch] [queue_delay_ms] [devices] [confirm_s]

(`devices` 1 measures the worker pool on one GPU alone, against the in-process figures of 05_benchmark.)
"""

import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from scaleproof.bench.loadgen import LoadgenSettings
from scaleproof.bench.multi_gpu import measure_scaling
from scaleproof.config import Params
from scaleproof.datasets import splits_for
from scaleproof.io_spec import ModelIO
from scaleproof.stages import build, calibrate, export
from scaleproof.stages.benchmark import load_for_worker


def main() -> None:  # spawned workers import this module: the work must not run at import
    out_dir = Path(sys.argv[1])
    max_batch = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    delay_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    n_devices = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    confirm_s = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
    out_dir.mkdir(parents=True, exist_ok=True)
    params = Params(run_dir=tempfile.mkdtemp(), model="zoo:resnet50", precisions=["fp16"], torch_modes=["compile"],
                    max_batch=256, batch_sizes=[1, 256], val_samples=64, calib_samples=32)
    t0 = time.time()
    exported = export.run(params)
    calibrate.run(params)  # build reads its result (the INT8 model is not used here)
    built = build.run(params)
    entry = next(e for e in built["engines"] if e["name"] == "torch-fp16-compile")
    print(f"export + calibrate + build {time.time() - t0:.0f} s; compile: {entry.get('compile')}", flush=True)
    x = splits_for(params, ModelIO.model_validate(exported["io"]), exported["dataset"])["val"].x
    cfg = LoadgenSettings(min_duration_s=1.0, min_queries=100, sla_p99_ms=15.0, max_batch=max_batch, max_delay_ms=delay_ms)
    devices = [f"cuda:{i}" for i in range(n_devices)]
    result = measure_scaling(partial(load_for_worker, str(params.run_path), entry, 0), x, devices, cfg,
                             start_qps=10_000, max_runs=6, tolerance=0.05, log_dir=out_dir / "loadgen",
                             progress=lambda m: print(m, flush=True), repeats=2, confirm_s=confirm_s, confirm_steps=3)
    result["build"] = entry
    (out_dir / "scaling.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({k: result[k] for k in ("peak_qps", "scaling_factor", "factor_range", "method")}, indent=1),
          flush=True)


if __name__ == "__main__":
    main()
