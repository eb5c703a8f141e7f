"""How fast can the harness itself go? LoadGen + the dynamic batcher over an engine that does no work.

    python benchmarks/harness_ceiling.py --qps 75000 --duration 10 [--out benchmarks/results/harness_ceiling.json]

The null engine returns a preallocated output at once, so every cost measured is the harness's:
LoadGen's scheduling, the Python callback, the queue, the copies into the batcher's input buffer,
the output buffer and the responses. If this cannot sustain a rate in a VALID Server run, no engine
can be measured at that rate here.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np

from scaleproof import hardware
from scaleproof.backends.base import Engine
from scaleproof.bench.loadgen import LoadgenSettings, Scenario, run_scenario
from scaleproof.provenance import package_versions, write_json


class NullEngine(Engine):
    """Does no work: returns a preallocated output of the right shape."""

    name, backend, precision, device = "null", "null", "fp32", "cpu"

    def __init__(self, max_batch: int, n_out: int = 10) -> None:
        self.max_batch = max_batch
        self._out = np.zeros((max_batch, n_out), np.float32)

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self._out[: len(x)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qps", type=float, default=75_000, help="Server target QPS (default 75000)")
    ap.add_argument("--duration", type=float, default=10.0, help="LoadGen min duration, seconds (default 10)")
    ap.add_argument("--sla-ms", type=float, default=1.0, help="P99 bound for validity, ms (default 1)")
    ap.add_argument("--max-batch", type=int, default=64, help="batcher max batch (default 64)")
    ap.add_argument("--max-delay-ms", type=float, default=0.2, help="batcher max queue delay, ms (default 0.2)")
    ap.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = ap.parse_args()

    samples = np.random.default_rng(0).standard_normal((1024, 1, 8, 8), dtype=np.float32)
    cfg = LoadgenSettings(min_duration_s=args.duration, min_queries=1024, sla_p99_ms=args.sla_ms,
                          max_batch=args.max_batch, max_delay_ms=args.max_delay_ms)
    with tempfile.TemporaryDirectory() as tmp:
        run = run_scenario(NullEngine(args.max_batch), samples, Scenario.server, cfg, Path(tmp), target_qps=args.qps)
        summary = (Path(tmp) / "mlperf_log_summary.txt").read_text()
    result = {"command": "python benchmarks/harness_ceiling.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out" and v is not None),
              "machine": {"cpu": hardware.cpu_info(), "platform": platform.platform()},
              "packages": {k: v for k, v in package_versions().items() if k in ("mlcommons-loadgen", "numpy")},
              **run.as_dict(), "summary_head": summary.split("Additional Stats")[0].strip()}
    result.pop("log_dir")
    print(json.dumps({k: result[k] for k in ("valid", "reason", "target_qps", "qps", "p50_ms", "p99_ms", "queries")}, indent=1))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
