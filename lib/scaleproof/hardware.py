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


def _runtime_cpu_features() -> dict[str, bool]:
    """The features this process's code sees (numpy's own CPUID probe, the same answer ONNX Runtime's MLAS and
    torch get): under an emulator or a hypervisor that hides an extension, /proc/cpuinfo may still list it."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return {}
    return {k: bool(v) for k, v in __cpu_features__.items()}


def isa_level(features: dict[str, bool], proc_flags: list[str], arch: str) -> str:
    """The instruction-set level that decides INT8 numerics and speed on a CPU.

    x86-64: `amx` (AMX-INT8 tiles), `avx512-vnni`, `avx-vnni` (VNNI on 256-bit vectors), `avx512` (no VNNI: INT8
    products go through saturating 16-bit sums), `avx2`, else `sse`. Arm: `neon-dotprod` (SDOT/UDOT) or `neon`.
    `features` (the runtime probe) rules where it has an answer; /proc/cpuinfo fills in what it does not name
    (AMX, AVX-VNNI), and only on top of what the probe confirmed.
    """
    def has(probe: str, flag: str) -> bool:
        return features[probe] if probe in features else flag in proc_flags

    if arch in ("aarch64", "arm64"):
        return "neon-dotprod" if has("ASIMDDP", "asimddp") else "neon"
    if has("AVX512VNNI", "avx512_vnni"):
        return "amx" if "amx_int8" in proc_flags else "avx512-vnni"
    if has("AVX2", "avx2") and "avx_vnni" in proc_flags:
        return "avx-vnni"
    if has("AVX512F", "avx512f"):
        return "avx512"
    if has("AVX2", "avx2"):
        return "avx2"
    return "sse"


#: ISA levels with an INT8 dot-product instruction that accumulates in 32 bits (no saturation in the GEMM)
INT8_DOT_PRODUCT_ISAS = ("amx", "avx512-vnni", "avx-vnni", "neon-dotprod")


@functools.cache
def cpu_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith(("flags", "Features")) and not flags:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    features = _runtime_cpu_features()
    level = isa_level(features, flags, platform.machine())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp")
    probe_names = {"avx2": "AVX2", "avx512f": "AVX512F", "avx512_vnni": "AVX512VNNI", "asimd": "ASIMD",
                   "asimddp": "ASIMDDP"}
    return {
        "model": model,
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa": [f for f in wanted if features.get(probe_names.get(f, ""), f in flags)],
        "isa_level": level,
    }


def cpu_slug() -> str:
    """The CPU as a device type: model and ISA level (`cpu-amd-epyc-avx2`), since the same model name covers
    machines whose INT8 kernels, and so numerics and speed, differ."""
    info = cpu_info()
    return "cpu-" + slugify(info["model"])[:48] + "-" + info["isa_level"]


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
    """Stable name of the accelerator results belong to: e.g. `h100-80gb-hbm3`, else `cpu-<model>-<isa level>`."""
    gpu = gpu_info()
    if gpu:
        return slugify(gpu["name"].removeprefix("NVIDIA "))
    return cpu_slug()


def has_cuda() -> bool:
    return gpu_info() is not None


if __name__ == "__main__":  # `python -m scaleproof.hardware`: the machine in one line (make test prints it)
    cpu, gpu = cpu_info(), gpu_info()
    print(f"machine: {cpu['model']} ({cpu['arch']}, ISA level {cpu['isa_level']}, {cpu['usable_cores']} usable cores)"
          + (f", GPU {gpu['name']} (compute capability {gpu['compute_capability']})" if gpu else ", no GPU")
          + f"; device type {device_slug()}")
