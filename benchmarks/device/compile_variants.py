"""Which torch.compile recipe makes the fastest ResNet-50 FP16 engine on this GPU, and at what compile time.

One variant per process (fresh Inductor caches, so compile times are cold), ResNet-50 (torchvision
architecture, random weights, seed 0), FP16 channels-last, one CUDA graph per batch size as the
scaleproof engine captures them; throughput is graph replays timed with CUDA events (no host copies).
  usage: python benchmarks/device/compile_variants.py VARIANT [BATCH ...]   (one JSON line on stdout)
VARIANT is `+`-joined options: eager | compile-<mode> , static (dynamic=False), freezing, cudnn-benchmark.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time


def main(variant: str, batches: list[int]) -> dict:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="triton-")
    import torch
    import torchvision

    opts = variant.split("+")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = "cudnn-benchmark" in opts
    if "freezing" in opts:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
    model = torchvision.models.resnet50().eval().to("cuda", torch.float16, memory_format=torch.channels_last)
    fn = model
    mode = next((o[len("compile-"):] for o in opts if o.startswith("compile-")), None)
    if mode:
        fn = torch.compile(model, mode=mode, dynamic=False if "static" in opts else None)
    out: dict = {"variant": variant, "gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "batches": {}}
    t0 = time.perf_counter()
    graphs = {}
    keep = []
    with torch.inference_mode():
        for b in batches:
            x = torch.randn(b, 3, 224, 224, device="cuda", dtype=torch.float16).contiguous(
                memory_format=torch.channels_last)
            tb = time.perf_counter()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    fn(x)
            torch.cuda.current_stream().wait_stream(stream)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                y = fn(x)
            torch.cuda.synchronize()
            graphs[b] = g
            keep.append((x, y))  # a graph replays on these addresses: freeing them makes replays read freed memory
            out["batches"][b] = {"compile_and_capture_s": round(time.perf_counter() - tb, 1)}
    out["compile_and_capture_s"] = round(time.perf_counter() - t0, 1)
    for b, g in graphs.items():
        for _ in range(20):
            g.replay()
        torch.cuda.synchronize()
        reps = max(50, int(3000 / b))
        runs = []
        for _ in range(3):  # three timed windows; the median is reported
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                g.replay()
            end.record()
            torch.cuda.synchronize()
            runs.append(b * reps / (start.elapsed_time(end) / 1000))
        runs.sort()
        out["batches"][b].update(img_per_s=round(runs[1]), windows=[round(r) for r in runs])
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    print(json.dumps(main(sys.argv[1], [int(b) for b in sys.argv[2:]] or [128, 256])), flush=True)
