"""torch.compile's caches kept per GPU type, so a compiled engine is compiled once per GPU type, torch
version, model and mode, and loaded from the cache by every later run and worker process.

Inductor (FX graph cache, autotuning results) and Triton (compiled kernels) write their caches to the
folders their environment variables name; pointing both at a keyed folder before the first compile is
all it takes. A hit skips lowering, and with it max-autotune's minutes of benchmarking per shape.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

ENV = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")


def default_root() -> Path:
    """Where caches live unless `compile_cache_dir` says otherwise: the user's cache folder."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scaleproof" / "compile"


def cache_key(recipe: dict[str, Any]) -> str:
    """16 hex digits over what decides the compiled code: model and weights, precision, mode, shapes."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir(root: str | os.PathLike | None, device_slug: str, torch_version: str, recipe: dict[str, Any]) -> Path:
    """`<root>/<GPU slug>/torch-<version>/<mode>-<key>`: one folder per GPU type, torch version, model and mode."""
    safe_version = torch_version.replace("+", "_")
    return (Path(root) if root else default_root()) / device_slug / f"torch-{safe_version}" / \
        f"{recipe.get('compile_mode', 'default')}-{cache_key(recipe)}"


def use(folder: Path) -> None:
    """Point Inductor's and Triton's caches at `folder` (before anything is compiled in this process)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder / "inductor")
    os.environ["TRITON_CACHE_DIR"] = str(folder / "triton")


def counts() -> dict[str, int]:
    """Inductor's FX graph cache hits and misses so far in this process."""
    from torch._dynamo.utils import counters

    c = counters["inductor"]
    return {"hits": int(c.get("fxgraph_cache_hit", 0)), "misses": int(c.get("fxgraph_cache_miss", 0)),
            "bypassed": int(c.get("fxgraph_cache_bypass", 0))}


def outcome(before: dict[str, int], after: dict[str, int]) -> str:
    """'hit' when every compiled graph came from the cache, 'miss' when none did, 'partial', or 'not used'."""
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    if not hits and not misses:
        return "not used"  # the FX graph cache was bypassed or is disabled
    if hits and not misses:
        return "hit"
    return "miss" if not hits else "partial"
