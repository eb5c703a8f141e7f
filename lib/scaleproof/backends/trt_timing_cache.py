"""TensorRT timing caches, one per GPU type and TensorRT version, shared by every build there.

Timing caches combine only for the same TensorRT version and device, so the file name carries both,
and a key file beside it says what made it. A cache under another key is ignored (with a warning);
a corrupt one is replaced. Saving takes a lock, merges whatever another build saved since this one
loaded (`ITimingCache.combine`), and replaces the file in one rename, so concurrent builds add to the
cache instead of overwriting each other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..provenance import atomic_write_bytes, read_json, write_json


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class TimingCacheFile:
    def __init__(self, folder: Path, trt_version: str, device_slug: str, compute_capability: str | None) -> None:
        self.key = {"tensorrt_version": trt_version, "device_slug": device_slug,
                    "compute_capability": compute_capability}
        self.path = Path(folder) / f"timing-{device_slug}-trt{trt_version}.cache"
        self.key_path = self.path.with_suffix(".json")
        self.lock_path = self.path.with_suffix(".lock")
        self._loaded_sha: str | None = None
        self.status: dict[str, Any] = {"path": str(self.path)}

    def _matching_bytes(self) -> bytes | None:
        """The cache file's bytes if it exists under this key; None (with the reason recorded) if not."""
        if not self.path.exists():
            self.status.update(loaded="new", reason="no timing cache yet")
            return None
        key = read_json_or_none(self.key_path)
        if key != self.key:
            msg = f"timing cache {self.path} has no matching key file ({key} vs {self.key}); building without it"
            warnings.warn(msg, stacklevel=3)
            self.status.update(loaded="ignored", reason=msg)
            return None
        return self.path.read_bytes()

    def attach(self, config) -> dict[str, Any]:
        """Give `config` (an IBuilderConfig) this cache, or an empty one where it is missing or corrupt."""
        data = self._matching_bytes()
        cache = None
        if data is not None:
            try:
                cache = config.create_timing_cache(data)
            except Exception as e:  # noqa: BLE001 - TensorRT raises several types on bad bytes
                cache, error = None, e
            else:
                error = None if cache is not None else "create_timing_cache returned None"
            if cache is None or not config.set_timing_cache(cache, False):
                msg = f"timing cache {self.path} is corrupt or unusable ({error or 'rejected'}); building with an " \
                      "empty one, which replaces it after the build"
                warnings.warn(msg, stacklevel=2)
                self.status.update(loaded="corrupt", reason=msg)
                cache = None
            else:
                self._loaded_sha = hashlib.sha256(data).hexdigest()
                self.status.update(loaded="hit", reason=f"{len(data)} bytes")
        if cache is None:
            config.set_timing_cache(config.create_timing_cache(b""), False)
        return self.status

    def save(self, config) -> dict[str, Any]:
        """Write the builder's cache back, merged with any entries another build saved meanwhile."""
        cache = config.get_timing_cache()
        with file_lock(self.lock_path):
            merged = False
            if self.path.exists() and read_json_or_none(self.key_path) == self.key:
                current = self.path.read_bytes()
                if hashlib.sha256(current).hexdigest() != self._loaded_sha:
                    try:
                        other = config.create_timing_cache(current)
                        merged = bool(other is not None and cache.combine(other, False))
                    except Exception:  # noqa: BLE001 - a corrupt file on disk is simply replaced
                        merged = False
            data = bytes(cache.serialize())
            atomic_write_bytes(self.path, data)
            write_json(self.key_path, self.key)
            self._loaded_sha = hashlib.sha256(data).hexdigest()
        self.status.update(saved_bytes=len(data), merged_concurrent_writer=merged)
        return self.status


def read_json_or_none(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None
