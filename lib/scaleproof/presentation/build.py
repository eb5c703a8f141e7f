"""Stage 03's presentation: the TensorRT engines' build details."""

from __future__ import annotations

import pandas as pd

from ..results import BuildResult


def tensorrt_table(built: BuildResult) -> pd.DataFrame:
    """Per TensorRT engine: typing, ONNX nodes vs engine layers, fused and reformat layers, timing cache."""
    rows = []
    for e in built.engines:
        t = e.tensorrt
        if t is None or not t.model_dump(exclude_unset=True):  # an engine of another backend, or no record
            continue
        layers = t.layers
        rows.append({"engine": e.name, "typing": t.typing, "ONNX nodes": layers and layers.onnx_nodes,
                     "engine layers": layers and layers.engine_layers, "fused layers": layers and layers.fused_layers,
                     "network layers in fused": layers and layers.network_layers_in_fused,
                     "reformat layers": layers and layers.reformat_layers,
                     "timing cache": t.timing_cache and t.timing_cache.loaded})
    if not rows:
        return pd.DataFrame({"note": ["no TensorRT engine in this run (TensorRT is not installed on this machine "
                                      "or backend is not tensorrt/auto)"]})
    return pd.DataFrame(rows).set_index("engine")
