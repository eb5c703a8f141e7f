"""Machine identity: which CPU and GPU a result or an engine belongs to."""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
from typing import Any


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@functools.cache
def cpu_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd")
    return {
        "model": model,
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa": [f for f in wanted if f in flags],
    }


@functools.cache
def gpu_info() -> dict[str, Any] | None:
    """The first visible CUDA GPU, or None. Uses torch only if it is already importable with CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    info: dict[str, Any] = {
        "name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "count": torch.cuda.device_count(),
        "cuda_runtime": torch.version.cuda,
        "driver": None,
    }
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout
            info["driver"] = out.splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    return info


def device_slug() -> str:
    """Stable name of the accelerator results belong to: e.g. `h100-80gb-hbm3`, else `cpu-<model>`."""
    gpu = gpu_info()
    if gpu:
        return slugify(gpu["name"].removeprefix("NVIDIA "))
    return "cpu-" + slugify(cpu_info()["model"])[:48]


def has_cuda() -> bool:
    return gpu_info() is not None
