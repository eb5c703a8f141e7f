"""torch.compile max-autotune made practical by the compile cache: the ResNet-50 FP16 engine built once cold (its
minutes of kernel benchmarking land in the cache folder), then loaded in a fresh process from that cache, as the
second run of a profile on the same GPU type loads it, and measured with LoadGen Offline (freezing_probe's
`offline_runs`: three runs, max batch 256).

    python benchmarks/device/autotune_probe.py OUT_DIR CACHE_DIR [MODE] [freezing]

MODE defaults to max-autotune-no-cudagraphs (the engine captures its own CUDA graphs). CACHE_DIR and the run folder
beside it are kept: on a warm machine a second call, or a call after a cut one, starts from what is already cached
(Inductor stores each autotuned kernel's choice as it goes).
"""

import json
import sys
import time
from pathlib import Path

from freezing_probe import offline_runs

from scaleproof.config import Params
from scaleproof.datasets import splits_for
from scaleproof.io_spec import ModelIO
from scaleproof.isolate import call_isolated
from scaleproof.stages import build, calibrate, export


def main() -> None:  # spawned workers import this module: the work must not run at import
    out_dir, cache_dir = Path(sys.argv[1]), Path(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "max-autotune-no-cudagraphs"
    freezing = len(sys.argv) > 4 and sys.argv[4] == "freezing"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = Params(run_dir=str(cache_dir.parent / "autotune-run"), model="zoo:resnet50", precisions=["fp16"],
                    torch_modes=["compile"], compile_mode=mode, compile_freezing=freezing,
                    compile_cache_dir=str(cache_dir), max_batch=256, batch_sizes=[1, 256], val_samples=64,
                    calib_samples=32)
    t0 = time.perf_counter()
    exported = export.run(params)
    calibrate.run(params)  # build reads its result (the INT8 model is not used here)
    print(f"export + calibrate {time.perf_counter() - t0:.0f} s; building with {mode}, freezing {freezing}", flush=True)
    t0 = time.perf_counter()
    built = build.run(params)  # compiles into CACHE_DIR, cold on a fresh machine
    entry = next(e for e in built["engines"] if e["name"] == "torch-fp16-compile")
    row = {"compile_mode": mode, "compile_freezing": freezing, "build_seconds": round(time.perf_counter() - t0, 1),
           "build_compile": entry.get("compile")}
    print(json.dumps(row), flush=True)
    x = splits_for(params, ModelIO.model_validate(exported["io"]), exported["dataset"])["val"].x
    row.update(call_isolated(offline_runs, str(params.run_path), entry, x, str(out_dir / "offline"),
                             what="offline runs"))
    print(json.dumps(row), flush=True)
    (out_dir / "autotune_probe.json").write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
