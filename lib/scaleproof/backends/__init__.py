"""Inference backends, one module each, found by name through `by_name(name)`.

Every backend module provides the same functions (`Backend` says which); a stage never branches on a
backend's name. Each module imports its runtime (onnxruntime, torch, tensorrt) lazily; `base` holds what
they share.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from .base import BuildJob, Engine

NAMES = ("onnxruntime", "onnxruntime_cuda", "tensorrt", "torch")


class Backend(Protocol):
    NAME: str

    def version(self) -> str: ...  # the runtime's version, recorded in every engine's sidecar

    def supported(self, device: str) -> dict[str, set[str]]: ...  # precision -> modes it builds on cpu/cuda

    def build_engine(self, job: BuildJob) -> Path: ...  # the engine into the store; its sidecar path

    def build_record(self, sidecar: Any) -> dict[str, Any]: ...  # what build.json keeps beside the common fields

    def load(self, sidecar_path: Path, threads: int = 0, source_sha256: str | None = None) -> Engine: ...


def by_name(name: str) -> Backend:
    """The backend module called `name`."""
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}: one of {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")  # type: ignore[return-value]
