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


def low_precision_table(built: BuildResult) -> pd.DataFrame:
    """Per torchao engine (int8, fp8, int8-weight-only): the Linear layers it quantized, those kept or left alone
    in bfloat16, and the share of one sample's FLOPs that runs in the low precision (convolutions never do)."""
    rows = []
    for e in built.engines:
        lp = e.low_precision
        if not lp:
            continue
        rows.append({"engine": e.name, "Linear layers": lp["linear_layers"],
                     "quantized": len(lp["quantized_layers"]),
                     "kept + left alone": len(lp["kept_layers"]) + len(lp.get("left_alone", {})),
                     "FLOPs in low precision": f"{lp['quantized_flops_share']:.1%}",
                     "convolutions' FLOPs (bfloat16)": f"{lp['conv_flops_share']:.1%}",
                     "statement": lp["statement"]})
    if not rows:
        return pd.DataFrame({"note": ["no torchao engine in this run (precisions int8, fp8 or int8-weight-only "
                                      "with backend torch on a CUDA GPU build them)"]})
    return pd.DataFrame(rows).set_index("engine")
