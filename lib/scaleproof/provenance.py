"""Hashes, atomic writes and the environment a run happened in."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 1 << 20

# Packages whose versions change results or timings; recorded in every manifest.
TRACKED_PACKAGES = (
    "scaleproof", "torch", "numpy", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "tensorrt",
    "scikit-learn", "safetensors", "papermill", "nbconvert", "mlcommons-loadgen", "pandas", "matplotlib",
    "pydantic", "nvidia-modelopt",
)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_array(*arrays: np.ndarray) -> str:
    """Hash of arrays' dtype, shape and bytes: identical data gives an identical hash on any machine."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    On any failure (disk full included) the temporary file is removed and `path` is left as it was,
    so a reader never sees a half-written artifact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; artifacts get the usual file mode
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types for numpy scalars/arrays, paths, enums and dataclass-like objects."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "value") and type(obj).__module__ != "builtins" and hasattr(type(obj), "__members__"):
        return obj.value
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None  # JSON has no NaN/Inf; None is explicit and never mistaken for a number
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def runtime_versions() -> dict[str, str]:
    """Versions of the inference runtimes, for messages about a crash in one of them."""
    return {k: v for k, v in package_versions().items() if k in ("onnxruntime", "torch", "tensorrt")}


# set by `scaleproof fleet` in the members' runtime environment: the driver's `<commit>:<dirty 1|0>`, since the
# shipped copy of the package is not a git checkout
SHIPPED_GIT_ENV = "SCALEPROOF_SHIPPED_GIT"


def git_state(repo: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout the code runs from, or None outside git."""
    cwd = Path(repo) if repo else Path(__file__).resolve().parent
    if not repo and os.environ.get(SHIPPED_GIT_ENV):  # a fleet member: the code was shipped from this checkout
        commit, _, dirty = os.environ[SHIPPED_GIT_ENV].partition(":")
        return {"commit": commit or None, "dirty": {"1": True, "0": False}.get(dirty)}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment() -> dict[str, Any]:
    """Everything about where a run happened that can change its numbers."""
    from . import hardware

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_state(),
        "cpu": hardware.cpu_info(),
        "gpu": hardware.gpu_info(),
        "device_slug": hardware.device_slug(),
    }
