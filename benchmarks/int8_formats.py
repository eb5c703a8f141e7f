"""Accuracy and CPU speed of each INT8 format on this CPU: S8S8, S8S8 with 7-bit weights, U8U8.

    python benchmarks/int8_formats.py [--models zoo:digits-cnn zoo:digits-mobile] [--out FILE.json]
    scripts/emulate_cpu.sh .venv/bin/python benchmarks/int8_formats.py --out ...   # as an AVX2-only Zen 3

For each model and format: export, then 02_calibrate with `int8_format` pinned (every op quantized, mixed precision
allowed, sensitivity off), so the table shows whether the all-nodes INT8 model keeps the gate on this CPU, how many
nodes had to stay FP32 if not, its accuracy against labels, and FP32 vs INT8 throughput at batch 8. Under the
emulator the accuracy is the emulated CPU's and the throughputs are the emulator's, not that CPU's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from scaleproof import hardware
from scaleproof.config import Int8Format, Params
from scaleproof.provenance import package_versions, write_json
from scaleproof.stages import calibrate, export

FORMATS = [Int8Format.s8s8, Int8Format.s8s8_reduced_range, Int8Format.u8u8]


def measure(model: str, fmt: Int8Format, work: Path) -> dict:
    params = Params(model=model, run_dir=str(work / f"{model.replace(':', '-')}-{fmt.value}"), int8_format=fmt,
                    sensitivity=False, backend="onnxruntime")
    t0 = time.monotonic()
    export.run(params)
    r = calibrate.run(params)
    speed = r["speed_cpu"]
    return {"model": model, "int8_format": fmt.value, "format": r["format"],
            "all_nodes_passed": r["int8_all_nodes"]["passed"], "all_nodes_top1": r["int8_all_nodes"].get("top1"),
            "int8_passed": r["int8_passed"], "kept_fp32": r["kept_fp32"], "int8_nodes": r["qdq"]["int8_nodes"],
            "top1": r["int8"].get("top1"), "fp32_samples_per_s": speed["fp32"]["samples_per_s"],
            "int8_samples_per_s": speed["int8"]["samples_per_s"], "batch": speed["int8"]["batch"],
            "seconds": round(time.monotonic() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["zoo:digits-cnn", "zoo:digits-mobile"],
                    help="models to quantize (zoo names or package.module:factory)")
    ap.add_argument("--out", type=Path, default=None, help="write the rows and the machine here (JSON)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for fmt in FORMATS:
                rows.append(measure(model, fmt, Path(tmp)))
                r = rows[-1]
                print(f"{model:20s} {fmt.value:20s} all-nodes {'pass' if r['all_nodes_passed'] else 'FAIL'} "
                      f"top1 {r['top1']} kept FP32 {len(r['kept_fp32'])}/{r['int8_nodes']}  "
                      f"FP32 {r['fp32_samples_per_s']} INT8 {r['int8_samples_per_s']} samples/s", flush=True)
    result = {"machine": hardware.cpu_info(), "device_type": hardware.device_slug(),
              "onnxruntime": package_versions().get("onnxruntime"), "rows": rows}
    if args.out:
        write_json(args.out, result)
    print(json.dumps({"device_type": result["device_type"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
