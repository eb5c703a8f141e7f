"""A calibration cache that is only ever reused for the model, data and settings it was made from.

The cache holds the activation ranges a calibrator computed (ONNX Runtime's `TensorsData` JSON) with
the key that produced them: the ONNX model's sha256, the calibration data's sha256, the method and
its settings, the quantizer with its version, and the CPU type that ran it (its ISA level included). ONNX Runtime's own cache checks only the method,
so scales of another model or data set would be applied silently; here any difference in the key
refuses the cache with the fields that differ, and calibration runs again.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import read_json, write_json

FORMAT = "scaleproof-calibration-cache/1"


@dataclass
class Lookup:
    """What a cache lookup found: `ranges` when the key matched, else None and the reason."""

    status: str  # hit, miss, refused or unreadable
    reason: str
    ranges: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "reason": self.reason}


def cache_key(onnx_sha256: str, data_sha256: str, method: str, settings: dict[str, Any], quantizer: str,
              quantizer_version: str, device: str) -> dict[str, Any]:
    """Everything that invalidates a calibration; two equal keys mean the same ranges. `device` is the CPU type
    whose FP32 kernels ran the calibration data (`hardware.cpu_slug`: model and ISA level)."""
    return {"onnx_sha256": onnx_sha256, "calib_data_sha256": data_sha256, "method": method,
            "settings": dict(sorted(settings.items())), "quantizer": quantizer, "quantizer_version": quantizer_version,
            "device": device}


def key_differences(cached: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Human-readable list of the key fields that differ ("method: cached entropy, now minmax")."""
    def short(v: Any) -> str:
        s = json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v)
        return s[:12] + "…" if len(s) == 64 and all(c in "0123456789abcdef" for c in s) else s

    return [f"{k}: cached {short(cached.get(k))}, now {short(v)}" for k, v in wanted.items() if cached.get(k) != v]


def range_problems(ranges: dict[str, Any]) -> str | None:
    """Why cached ranges cannot be used (empty, an entry without both ends, a non-finite or inverted range), or None."""
    data = ranges.get("data")
    if not isinstance(data, dict) or not data:
        return "no tensor ranges"
    for name, entry in data.items():
        try:
            # ONNX Runtime writes an end as a number or as a serialized array ({"data": [...], "dtype": ...})
            lo, hi = (np.asarray(v["data"] if isinstance(v := entry[end], dict) else v, dtype=np.float64).ravel()
                      for end in ("lowest", "highest"))
        except (KeyError, TypeError, ValueError):
            return f"tensor {name!r} lacks a lowest or highest value"
        if lo.size == 0 or lo.shape != hi.shape:
            return f"tensor {name!r} has an empty or mismatched range"
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            return f"tensor {name!r} has a non-finite range"
        if (lo > hi).any():
            return f"tensor {name!r} has lowest above highest"
    return None


def lookup(path: Path, key: dict[str, Any]) -> Lookup:
    """Read the cache at `path` if it was made under `key`; warn and report why not otherwise."""
    if not path.exists():
        return Lookup("miss", f"no cache at {path}")
    try:
        doc = read_json(path)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("ranges"), dict):
            raise ValueError(f"not a {FORMAT} file")
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError; an empty file lands here too
        msg = f"calibration cache {path} is empty or unreadable ({e}); calibrating again and replacing it"
        warnings.warn(msg, stacklevel=2)
        return Lookup("unreadable", msg)
    diff = key_differences(doc.get("key", {}), key)
    if diff:
        return Lookup("refused", f"calibration cache {path} was made under another key ({'; '.join(diff)}); "
                                 "calibrating again")
    bad = range_problems(doc["ranges"])
    if bad:  # the right key but ranges that would quantize wrongly: never used, replaced like a corrupt file
        msg = f"calibration cache {path} has unusable ranges ({bad}); calibrating again and replacing it"
        warnings.warn(msg, stacklevel=2)
        return Lookup("unreadable", msg)
    return Lookup("hit", f"calibration cache {path} matches model, data, method, settings and quantizer",
                  ranges=doc["ranges"])


def store(path: Path, key: dict[str, Any], ranges: dict[str, Any]) -> Path:
    """Write the cache atomically: a concurrent reader sees the old file or the new one, never half."""
    return write_json(path, {"format": FORMAT, "key": key, "ranges": ranges})
