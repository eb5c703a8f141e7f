"""Stage 03's presentation: the TensorRT engines' build details."""

from __future__ import annotations

from typing import Any

import pandas as pd


def tensorrt_table(built: dict[str, Any]) -> pd.DataFrame:
    """Per TensorRT engine: typing, ONNX nodes vs engine layers, fused and reformat layers, timing cache."""
    rows = []
    for e in built["engines"]:
        t = e.get("tensorrt")
        if not t:
            continue
        layers = t.get("layers", {})
        rows.append({"engine": e["name"], "typing": t.get("typing"), "ONNX nodes": layers.get("onnx_nodes"),
                     "engine layers": layers.get("engine_layers"), "fused layers": layers.get("fused_layers"),
                     "network layers in fused": layers.get("network_layers_in_fused"),
                     "reformat layers": layers.get("reformat_layers"),
                     "timing cache": t.get("timing_cache", {}).get("loaded")})
    if not rows:
        return pd.DataFrame({"note": ["no TensorRT engine in this run (TensorRT is not installed on this machine "
                                      "or backend is not tensorrt/auto)"]})
    return pd.DataFrame(rows).set_index("engine")
