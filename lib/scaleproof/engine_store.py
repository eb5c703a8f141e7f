"""Engines stored per device type, each tied by a sidecar to what built it.

Layout: `<store>/<device_slug>/<backend>-<precision>.<ext>` beside `<backend>-<precision>.json`.
Loading checks the sidecar before anything is deserialized: the device it was built for, the
backend version, the engine file's hash and (where given) the source model's hash. A mismatch is
refused with a message that says what to rebuild; an engine is never loaded on trust.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import hardware
from .errors import ArtifactError, EngineMismatchError
from .provenance import atomic_path, read_json, sha256_file, write_json

SIDECAR_FORMAT = 1


@dataclass
class Sidecar:
    name: str
    backend: str
    backend_version: str
    precision: str
    device_slug: str
    device_name: str
    compute_capability: str | None
    input_profile: dict[str, Any]
    source: str  # the artifact it was built from: an ONNX path in the run, or a model spec
    source_sha256: str
    engine_file: str
    engine_sha256: str = ""
    built_at: str = ""
    build_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = SIDECAR_FORMAT


def current_device() -> dict[str, Any]:
    gpu = hardware.gpu_info()
    return {"device_slug": hardware.device_slug(),
            "device_name": gpu["name"] if gpu else f"{hardware.cpu_info()['model']} ({hardware.cpu_info()['isa_level']})",
            "compute_capability": gpu["compute_capability"] if gpu else None}


def device_dir(store: str | os.PathLike, device_slug: str) -> Path:
    return Path(store) / device_slug


def save_engine(store: str | os.PathLike, sidecar: Sidecar, built_file: Path) -> Path:
    """Move `built_file` into the store under the sidecar's device; write the sidecar last.

    Both writes are atomic renames, and the sidecar (which names the engine's hash) appears only
    after the engine file is complete, so a reader sees either the old pair or the new pair.
    """
    folder = device_dir(store, sidecar.device_slug)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sidecar.engine_file
    with atomic_path(target) as tmp:
        shutil.copyfile(built_file, tmp)
    sidecar.engine_sha256 = sha256_file(target)
    sidecar.built_at = sidecar.built_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    sidecar_path = folder / f"{Path(sidecar.engine_file).stem}.json"
    write_json(sidecar_path, asdict(sidecar))
    return sidecar_path


def read_sidecar(path: str | os.PathLike) -> Sidecar:
    path = Path(path)
    try:
        raw = read_json(path)
        if raw.get("format") != SIDECAR_FORMAT:
            raise ArtifactError(f"{path}: sidecar format {raw.get('format')} is not {SIDECAR_FORMAT}; rebuild the engine")
        return Sidecar(**raw)
    except FileNotFoundError:
        raise ArtifactError(f"engine sidecar {path} is missing; build the engine first (stage 03_build)") from None
    except (ValueError, TypeError) as e:
        raise ArtifactError(f"engine sidecar {path} is unreadable ({e}); rebuild the engine") from e


def _version_tuple(v: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in (v or "").split("+")[0].split(".") if p.isdigit())


def device_refusal(sc: Sidecar, here: dict[str, Any]) -> str | None:
    """Why an engine may not run on this device, or None. Exact device by default; TensorRT's opt-in
    hardware compatibility widens it (AMPERE_PLUS: any GPU of compute capability 8.0 or more;
    SAME_COMPUTE_CAPABILITY: any GPU of the same compute capability)."""
    if sc.device_slug == here["device_slug"] and sc.compute_capability == here["compute_capability"]:
        return None
    level = sc.extra.get("hardware_compat", "none")
    cc = _version_tuple(here["compute_capability"])
    if level == "ampere_plus" and cc and cc >= (8, 0):
        return None
    if level == "same_compute_capability" and cc and sc.compute_capability == here["compute_capability"]:
        return None
    widened = "" if level == "none" else f" (its hardware compatibility level {level} does not cover this GPU)"

    def where(name: str, slug: str, cc: str | None) -> str:  # a CPU has no compute capability: its ISA is in the slug
        return f"{name} ({slug}" + (f", compute capability {cc})" if cc else ")")

    return (f"engine {sc.name} was built for {where(sc.device_name, sc.device_slug, sc.compute_capability)} but this "
            f"machine is {where(here['device_name'], here['device_slug'], here['compute_capability'])}{widened}")


def version_refusal(sc: Sidecar, installed: str) -> str | None:
    """Why an engine may not run with the installed backend version, or None. Exact version by default;
    a TensorRT version-compatible engine runs on the same major version, same or later."""
    if sc.backend_version == installed:
        return None
    built, now = _version_tuple(sc.backend_version), _version_tuple(installed)
    if sc.extra.get("version_compatible") and built and now and built[0] == now[0] and now >= built:
        return None
    return f"engine {sc.name} was built with {sc.backend} {sc.backend_version} but {installed} is installed"


def check_engine(sidecar_path: str | os.PathLike, backend_version: str, source_sha256: str | None = None,
                 device: dict[str, Any] | None = None) -> tuple[Sidecar, Path]:
    """Refuse an engine that was built elsewhere, by another version, from another source, or changed since."""
    sc = read_sidecar(sidecar_path)
    here = device or current_device()
    rebuild = f"rebuild it on this machine: stage 03_build, or `scaleproof build-engine` for {sc.name}"
    for refusal in (device_refusal(sc, here), version_refusal(sc, backend_version)):
        if refusal:
            raise EngineMismatchError(f"{refusal}; {rebuild}")
    engine_path = Path(sidecar_path).parent / sc.engine_file
    if not engine_path.is_file():
        raise ArtifactError(f"engine file {engine_path} named by its sidecar is missing; {rebuild}")
    actual = sha256_file(engine_path)
    if actual != sc.engine_sha256:
        raise EngineMismatchError(f"engine file {engine_path.name} changed after it was built (sha256 "
                                  f"{actual[:12]}…, sidecar says {sc.engine_sha256[:12]}…); do not load it: {rebuild}")
    if source_sha256 is not None and source_sha256 != sc.source_sha256:
        raise EngineMismatchError(f"engine {sc.name} was built from {sc.source} with sha256 {sc.source_sha256[:12]}…, "
                                  f"but the current source has {source_sha256[:12]}…; {rebuild}")
    return sc, engine_path
