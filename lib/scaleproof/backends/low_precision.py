"""INT8 and FP8 PyTorch engines on a CUDA GPU without TensorRT, through torchao (an optional extra).

torchao swaps the weights of `nn.Linear` layers for quantized tensors whose matrix multiplies run in INT8 or FP8
(dynamic activation scales, computed per row of each batch) and Inductor compiles them; everything else (convolutions,
attention's own matrix products, norms) runs in bfloat16. So what a precision buys depends on how much of the model's
work is in Linear layers: `account` measures that share, and build.json records it beside the layer names.

The engine stored is the model's weights; quantizing happens when the engine is loaded, from those weights, before
torch.compile (as compiling does), so the compile cache keys it by torchao's version too.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

# precision -> what it is, for messages and build.json
LOW_PRECISIONS = {
    "int8": "INT8 weights and dynamic per-row INT8 activations (torchao Int8DynamicActivationInt8WeightConfig)",
    "fp8": "FP8 e4m3 weights and dynamic activations, per-row scales (torchao "
           "Float8DynamicActivationFloat8WeightConfig, PerRow)",
    "int8-weight-only": "INT8 weights, bfloat16 activations (torchao Int8WeightOnlyConfig): a memory option",
}
BASE_DTYPE = "bfloat16"  # what torchao leaves alone runs in; FP8's row-wise scaled matmul writes bfloat16
FP8_MIN_CC = (8, 9)  # FP8 tensor cores: Ada (8.9) and Hopper (9.0) on
INSTALL = "pip install 'scaleproof[lowp]' (torchao 0.17 for torch 2.11)"
# Inductor settings torchao recommends for INT8 dynamic (its int_mm and the scale multiply fused); patched around the
# compile of that engine rather than set process-wide as torchao would, so later engines in a process keep theirs
INDUCTOR_PATCH = {"int8": {"force_fuse_int_mm_with_mul": True}}


def torchao_version() -> str | None:
    """torchao's version, or None where it is not installed."""
    if importlib.util.find_spec("torchao") is None:
        return None
    from importlib.metadata import version

    return version("torchao")


def refusal(precision: str, compute_capability: str | None, device_name: str = "",
            torchao: str | None = "") -> str | None:
    """Why this machine cannot run a `precision` engine, with what to do instead, or None where it can.
    `torchao` defaults to the installed version."""
    torchao = torchao_version() if torchao == "" else torchao
    if precision not in LOW_PRECISIONS:
        return None
    if not compute_capability:
        return f"torch {precision} needs a CUDA GPU (torchao's {precision} kernels run on CUDA); this machine has none"
    if torchao is None:
        return f"torch {precision} needs torchao, which is not installed: {INSTALL}"
    major, minor = (int(p) for p in compute_capability.split(".")[:2])
    if precision == "fp8" and (major, minor) < FP8_MIN_CC:
        return (f"torch fp8 needs compute capability {FP8_MIN_CC[0]}.{FP8_MIN_CC[1]} or more (FP8 tensor cores: "
                f"Ada, Hopper); {device_name or 'this GPU'} has {compute_capability}: build int8 or fp16 instead")
    return None


def config_for(precision: str):
    """torchao's quantization config for `precision`."""
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        PerRow,
    )

    if precision == "int8":
        return Int8DynamicActivationInt8WeightConfig(set_inductor_config=False)
    if precision == "fp8":
        return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)
    if precision == "int8-weight-only":
        return Int8WeightOnlyConfig(set_inductor_config=False)
    raise ValueError(f"{precision} is not a low precision: one of {', '.join(LOW_PRECISIONS)}")


def linear_names(module) -> list[str]:
    """Every nn.Linear layer's name: what torchao may quantize."""
    from torch import nn

    return [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]


def is_quantized(weight) -> bool:
    """A weight torchao replaced (a tensor subclass) rather than a plain tensor or parameter."""
    import torch

    data = weight.data if isinstance(weight, torch.nn.Parameter) else weight
    return type(data) is not torch.Tensor


INT_MM_MIN_ROWS = 17  # torch._int_mm (INT8 dynamic's matmul) takes more than 16 rows


def left_alone(module, precision: str, rows_per_sample: dict[str, float]) -> dict[str, str]:
    """Linear layers this precision must not take, and why: the out_proj of nn.MultiheadAttention (a
    NonDynamicallyQuantizableLinear, which torch marks as such: its weight is read raw by the attention function),
    and for INT8 dynamic, a layer fed fewer than 17 rows at batch 1 (a classifier head on pooled features)."""
    from torch import nn

    out: dict[str, str] = {}
    for name, m in module.named_modules():
        if isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear):
            out[name] = "nn.MultiheadAttention's out_proj (NonDynamicallyQuantizableLinear)"
        elif precision == "int8" and isinstance(m, nn.Linear) and rows_per_sample.get(name, INT_MM_MIN_ROWS) < \
                INT_MM_MIN_ROWS:
            out[name] = (f"{rows_per_sample[name]:g} rows per sample: INT8 dynamic's torch._int_mm needs "
                         f"{INT_MM_MIN_ROWS} or more at batch 1")
    return out


def quantize(module, precision: str, keep: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Quantize `module`'s Linear layers in place, except those named in `keep` (left in bfloat16); the names of
    the layers whose weights torchao replaced (it leaves alone a layer whose shape its kernels cannot take)."""
    from torch import nn
    from torchao.quantization import quantize_

    kept = set(keep)
    quantize_(module, config_for(precision), filter_fn=lambda m, name: isinstance(m, nn.Linear) and name not in kept)
    return [n for n, m in module.named_modules() if isinstance(m, nn.Linear) and is_quantized(m.weight)]


def layer_flops(module, example: tuple) -> dict[str, Any]:
    """Multiply-add FLOPs (2 per MAC) of one forward pass over `example`: each Linear and convolution layer's,
    and the whole model's (torch's FLOP counter: matrix products, convolutions and attention)."""
    import torch
    from torch import nn
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    per_layer: dict[str, float] = {}
    kinds: dict[str, str] = {}
    rows: dict[str, float] = {}  # a Linear layer's input rows per sample (tokens, patches; 1 for a head)

    def hook(name: str, m):
        def count(_mod, args, out):
            x = args[0] if args else None
            if isinstance(m, nn.Linear) and x is not None:
                per_layer[name] = per_layer.get(name, 0.0) + 2.0 * x.numel() * m.out_features
                kinds[name] = "linear"
                rows[name] = x.numel() / m.in_features / len(example[0])
            elif isinstance(m, nn.modules.conv._ConvNd) and isinstance(out, torch.Tensor):
                macs_per_out = m.in_channels // m.groups * math.prod(m.kernel_size)
                per_layer[name] = per_layer.get(name, 0.0) + 2.0 * out.numel() * macs_per_out
                kinds[name] = "conv"
        return count

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # nn.MultiheadAttention's fused kernel has no FLOP formula either
    handles = [m.register_forward_hook(hook(n, m)) for n, m in module.named_modules()
               if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    try:
        # the math attention kernel: its matrix products are counted (the CPU's fused kernel has no FLOP formula)
        with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            module(*example)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for h in handles:
            h.remove()
    return {"per_layer": per_layer, "kinds": kinds, "rows_per_sample": rows, "total": float(counter.get_total_flops())}


def account(flops: dict[str, Any], quantized: list[str], kept: list[str], precision: str,
            left: dict[str, str] | None = None) -> dict[str, Any]:
    """What a precision quantized and its share of the model's FLOPs, for build.json: ResNet-style models do their
    work in convolutions, which torchao does not quantize, and this says so with the share that stays bfloat16."""
    total = max(flops["total"], sum(flops["per_layer"].values())) or 1.0
    per, kinds = flops["per_layer"], flops["kinds"]
    linear = [n for n, k in kinds.items() if k == "linear"]
    convs = [n for n, k in kinds.items() if k == "conv"]
    q_share = sum(per.get(n, 0.0) for n in quantized) / total
    conv_share = sum(per[n] for n in convs) / total
    left = left or {}
    skipped = [n for n in linear if n not in quantized and n not in kept and n not in left]
    out = {
        "precision": precision, "what": LOW_PRECISIONS[precision], "torchao": torchao_version(),
        "unquantized_dtype": BASE_DTYPE,
        "linear_layers": len(linear), "quantized_layers": quantized, "kept_layers": list(kept),
        "left_alone": left,  # layers this precision must not take, with why
        "linear_not_taken": skipped,  # torchao left them (a shape its kernels do not take)
        "model_gflops_per_sample": round(total / 1e9, 4),
        "quantized_flops_share": round(q_share, 4),
        "linear_flops_share": round(sum(per[n] for n in linear) / total, 4),
        "conv_layers": len(convs), "conv_flops_share": round(conv_share, 4),
        "unquantized_flops_share": round(1.0 - q_share, 4),
    }
    notes = []
    if convs:
        notes.append(f"{len(convs)} convolution layers ({conv_share:.1%} of the FLOPs) are not Linear layers: torchao "
                     f"does not quantize them, they run in {BASE_DTYPE}")
    notes.append(f"{q_share:.1%} of the model's FLOPs run in {precision}, {1 - q_share:.1%} in {BASE_DTYPE} "
                 "(unquantized layers, attention's own matrix products, everything outside Linear layers)")
    out["statement"] = "; ".join(notes)
    return out
