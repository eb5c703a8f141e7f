"""Why is an eager ResNet-50 slower under LoadGen than in the timing loop? Probe on a CUDA machine:
    python benchmarks/device/eager_server_probe.py
Times infer_indices alone, then LoadGen Server runs at one rate with several GIL switch intervals."""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scaleproof.bench import loadgen
from scaleproof.config import Params
from scaleproof.stages import build, export

params = Params(run_dir=tempfile.mkdtemp(), model="zoo:resnet50", precisions=["fp32"], torch_modes=["eager"],
                max_batch=64, batch_sizes=[1, 8, 32])
export.run(params)
built = build.run(params)
engine = build.load_engine(params.run_path, built["engines"][0])
x = {"input": np.random.default_rng(0).standard_normal((128, 3, 224, 224), dtype=np.float32)}
engine.load_samples(x)
for b in (1, 8, 32):
    engine.infer_indices(np.arange(b))
    t0 = time.perf_counter()
    for _ in range(20):
        engine.infer_indices(np.arange(b))
    print(f"infer_indices batch {b}: {(time.perf_counter() - t0) / 20 * 1e3:.2f} ms", flush=True)
cfg = loadgen.LoadgenSettings(min_duration_s=1.0, min_queries=100, sla_p99_ms=15.0, max_batch=64, max_delay_ms=2.0)
for interval in (50e-6, 1e-3, 5e-3):
    loadgen.GIL_SWITCH_INTERVAL_S = interval
    with tempfile.TemporaryDirectory() as tmp:
        r = loadgen.run_server(engine, x, cfg, 300.0, Path(tmp))
    n_batches = sum(r.batch_sizes.values())
    print(f"switch {interval * 1e3:g} ms: {'VALID' if r.valid else 'INVALID'} p50 {r.p50_ms:.1f} p99 {r.p99_ms:.1f} ms, "
          f"{r.queries} queries in {n_batches} batches", flush=True)
sys.exit(0)
