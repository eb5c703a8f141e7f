"""torchao's INT8 / FP8 / weight-only INT8 engines, on the CPU: which engines are planned and refused (and why),
what build.json says each precision quantized and its share of the FLOPs (torchvision ResNet-50 and ViT-B/16,
transformers' BERT), the accuracy gate on real torchao INT8 outputs (torchao's INT8 runs on the CPU too), and an FP8
stand-in (weights and activations rounded through float8_e4m3fn per row) where torchao's FP8 needs a GPU."""

import numpy as np
import pytest
import torch
from torch import nn

from scaleproof.backends import low_precision
from scaleproof.backends import torch as torch_backend
from scaleproof.backends.base import BuildInputs, EngineSkipped
from scaleproof.config import Backend, Params, Precision, TorchMode
from scaleproof.engine_store import Sidecar
from scaleproof.io_spec import ModelIO
from scaleproof.metrics import judge
from scaleproof.stages.build import Capabilities, plan_engines
from scaleproof.zoo import resolve_factory

pytest.importorskip("torchao")
LOWP = [Precision.int8, Precision.fp8, Precision.int8_weight_only]


def test_torchao_precisions_are_planned_in_compile_mode_on_a_gpu_only():
    modes = [TorchMode.eager, TorchMode.cuda_graph, TorchMode.compile]
    planned, skipped = plan_engines(Backend.torch, LOWP, Capabilities(cuda=True, tensorrt=False), modes)
    assert [s.name for s in planned] == ["torch-fp32", "torch-int8-compile", "torch-fp8-compile",
                                         "torch-int8-weight-only-compile"]
    assert {s["engine"] for s in skipped} == {f"torch-{p}{m}" for p in ("int8", "fp8", "int8-weight-only")
                                              for m in ("", "-cuda_graph")}
    planned, skipped = plan_engines(Backend.torch, LOWP, Capabilities(cuda=False, tensorrt=False), [TorchMode.compile])
    assert [s.name for s in planned] == ["torch-fp32"]
    assert {s["reason"] for s in skipped} == {f"torch on cpu does not build {p} compile"
                                              for p in ("int8", "fp8", "int8-weight-only")}


def test_refusals_say_what_is_missing_and_what_to_do():
    assert "needs a CUDA GPU" in low_precision.refusal("int8", None, torchao="0.17.0")
    no_ao = low_precision.refusal("fp8", "9.0", torchao=None)
    assert "needs torchao" in no_ao and "pip install 'scaleproof[lowp]'" in no_ao
    a100 = low_precision.refusal("fp8", "8.0", "NVIDIA A100-SXM4-80GB", torchao="0.17.0")
    assert a100 == ("torch fp8 needs compute capability 8.9 or more (FP8 tensor cores: Ada, Hopper); "
                    "NVIDIA A100-SXM4-80GB has 8.0: build int8 or fp16 instead")
    assert low_precision.refusal("fp8", "8.9", torchao="0.17.0") is None  # L4, L40S
    assert low_precision.refusal("fp8", "9.0", torchao="0.17.0") is None  # H100, H200
    assert low_precision.refusal("int8", "8.0", torchao="0.17.0") is None
    assert low_precision.refusal("fp16", None, torchao=None) is None  # not torchao's


def test_building_a_torchao_engine_on_this_cpu_is_refused_with_the_reason():
    io = ModelIO.single([3, 8, 8])
    inputs = BuildInputs(model_spec="zoo:digits-cnn", io=io, onnx_by_precision={}, max_batch=8, threads=1)
    with pytest.raises(EngineSkipped, match="needs a CUDA GPU"):
        torch_backend.build(inputs, "fp8", "unused-store", "zoo:digits-cnn", mode="compile")


def test_resnet50_says_its_convolutions_are_not_quantized():
    """torchvision's ResNet-50: 53 convolutions do nearly all the work and torchao quantizes Linear layers only; the
    one Linear (the classifier, fed one row a sample) is left alone by INT8 dynamic, whose matmul needs 17 rows."""
    model = resolve_factory("torchvision.models:resnet50")().eval()
    io = ModelIO.single([3, 64, 64])
    rec = torch_backend.low_precision_record(model, io, "int8", [], "cpu")
    assert rec["conv_layers"] == 53 and rec["linear_layers"] == 1
    assert rec["conv_flops_share"] > 0.99 and rec["quantized_flops_share"] == 0.0
    assert rec["left_alone"] == {"fc": "1 rows per sample: INT8 dynamic's torch._int_mm needs 17 or more at batch 1"}
    assert rec["statement"].startswith("53 convolution layers (")
    assert "are not Linear layers: torchao does not quantize them, they run in bfloat16" in rec["statement"]
    weight_only = torch_backend.low_precision_record(model, io, "int8-weight-only", [], "cpu")
    assert weight_only["quantized_layers"] == ["fc"] and 0 < weight_only["quantized_flops_share"] < 0.01


def test_vit_b16_attention_projections_stay_16_bit():
    """torchvision's ViT-B/16 keeps q, k and v in nn.MultiheadAttention's packed in_proj_weight (not a Linear) and
    its out_proj is a NonDynamicallyQuantizableLinear: only the MLP layers are quantized, about two thirds of
    the Linear work, and the FLOP share says so."""
    from torchvision.models import vit_b_16

    model = vit_b_16(image_size=64).eval()
    io = ModelIO.single([3, 64, 64])
    rec = torch_backend.low_precision_record(model, io, "int8", [], "cpu")
    mlp = [f"encoder.layers.encoder_layer_{i}.mlp.{j}" for i in range(12) for j in (0, 3)]
    assert rec["quantized_layers"] == mlp
    assert sum("out_proj" in k for k in rec["left_alone"]) == 12 and "heads.head" in rec["left_alone"]
    assert 0.4 < rec["quantized_flops_share"] < rec["linear_flops_share"] < 0.8
    assert rec["unquantized_flops_share"] == pytest.approx(1 - rec["quantized_flops_share"], abs=1e-4)


def bert_small():
    from scaleproof.examples.sentence_encoder import build_small

    torch.manual_seed(0)
    return build_small().eval()


BERT_IO = ModelIO(inputs=[{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [3, 1000]},
                          {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "seq"], "range": [1, 2]}],
                  outputs=["embedding"], dims={"seq": 64})


def test_bert_linear_layers_are_all_quantized_and_attention_matmuls_are_not():
    rec = torch_backend.low_precision_record(bert_small(), BERT_IO, "int8", [], "cpu")
    assert rec["linear_layers"] == 12 and len(rec["quantized_layers"]) == 12 and rec["left_alone"] == {}
    assert rec["conv_layers"] == 0 and "convolution" not in rec["statement"]
    # at hidden 32 and sequence 64, attention's QK^T and AV are a third of the work, and stay bfloat16
    assert rec["quantized_flops_share"] == pytest.approx(2 / 3, abs=0.01)


def test_kept_layers_are_left_out_and_their_flops_with_them():
    keep = ["bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense"]
    full = torch_backend.low_precision_record(bert_small(), BERT_IO, "int8", [], "cpu")
    rec = torch_backend.low_precision_record(bert_small(), BERT_IO, "int8", keep, "cpu")
    assert rec["kept_layers"] == keep and not set(keep) & set(rec["quantized_layers"])
    assert len(rec["quantized_layers"]) == 10 and rec["quantized_flops_share"] < full["quantized_flops_share"]


def test_weight_only_int8_about_halves_the_linear_weights():
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256)).to(torch.bfloat16)
    before = torch_backend.weight_bytes(model)
    assert low_precision.quantize(model, "int8-weight-only") == ["0", "2"]
    after = torch_backend.weight_bytes(model)
    # INT8 weights (1 byte each) plus per row a bfloat16 scale and an int64 zero point; bfloat16 biases unchanged
    assert after == 2 * 256 * 512 + (512 + 256) * (2 + 8) + 2 * (512 + 256)
    assert after < 0.52 * before  # about half


class OutlierBlock(nn.Module):
    """A layer fed one huge feature among ordinary ones (as in LLM.int8's outlier channels), whose weight for that
    feature is tiny: exact arithmetic ignores it, a per-row INT8 (or FP8) activation scale set by it rounds every
    other feature to zero."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(64, 64)
        self.mix = nn.Linear(64, 64)
        with torch.no_grad():
            self.mix.weight[:, 0] = 1e-6

    def forward(self, x):
        h = self.proj(x)
        h = torch.cat([h[..., :1] * 0 + 3e6, h[..., 1:]], dim=-1)  # feature 0 is an outlier
        return self.mix(h)


def cosine_params() -> Params:
    return Params(metric="cosine", min_cosine=0.99)


def test_the_gate_refuses_int8_broken_by_an_outlier_and_passes_it_with_that_layer_kept():
    torch.manual_seed(0)
    model = OutlierBlock().eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((32, 20, 64)).astype(np.float32))
    with torch.inference_mode():
        ref = [model(x).reshape(32, -1).numpy()]

    def judged(keep):
        q = OutlierBlock().eval()
        q.load_state_dict(model.state_dict())
        q = q.to(torch.bfloat16)
        low_precision.quantize(q, "int8", keep)
        with torch.inference_mode():
            got = [q(x.to(torch.bfloat16)).float().reshape(32, -1).numpy()]
        return judge(ref, got, None, cosine_params(), ["out"])

    broken = judged([])
    assert not broken["passed"] and "mean cosine to FP32" in broken["reason"]
    kept = judged(["mix"])
    assert kept["passed"], kept["reason"]
    assert kept["cosine_mean"] > 0.999


def test_real_int8_on_bert_passes_the_cosine_gate():
    model = bert_small()
    feed = BERT_IO.synthetic(16, np.random.default_rng(1))
    args = [torch.from_numpy(v) for v in feed.values()]
    with torch.inference_mode():
        ref = [model(*args).numpy()]
    q = bert_small().to(torch.bfloat16)
    low_precision.quantize(q, "int8")
    with torch.inference_mode():
        got = [q(*args).float().numpy()]
    row = judge(ref, got, None, cosine_params(), ["embedding"])
    assert row["passed"] and row["cosine_mean"] > 0.99, row["reason"]


def fp8_stand_in(module, precision, keep=()):
    """torchao's FP8 stand-in for the CPU: each Linear's weight and input rounded through float8_e4m3fn with a
    per-row scale (what the GPU kernel's operands hold), the product in bfloat16."""
    quantized = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear) and name not in keep:
            m.forward = fp8_linear(m)
            quantized.append(name)
    return quantized


def to_fp8(t):
    scale = t.abs().amax(-1, keepdim=True).clamp(min=1e-12) / 448.0
    return (t / scale).to(torch.float8_e4m3fn).to(t.dtype) * scale


def fp8_linear(m):
    def forward(x):
        return nn.functional.linear(to_fp8(x), to_fp8(m.weight), m.bias)
    return forward


def test_the_gate_judges_fp8_through_a_stand_in_where_its_kernels_need_a_gpu(monkeypatch):
    """The same outlier defeats FP8's per-row scale: fp8's record on the CPU comes from the stand-in, and the gate
    refuses it until the layer is kept."""
    monkeypatch.setattr(low_precision, "quantize", fp8_stand_in)
    torch.manual_seed(0)
    model = OutlierBlock().eval()
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((32, 20, 64)).astype(np.float32))
    with torch.inference_mode():
        ref = [model(x).reshape(32, -1).numpy()]
    for keep, passes in (([], False), (["mix"], True)):
        q = OutlierBlock().eval()
        q.load_state_dict(model.state_dict())
        assert low_precision.quantize(q, "fp8", keep) == [n for n in ("proj", "mix") if n not in keep]
        with torch.inference_mode():
            got = [q(x).reshape(32, -1).numpy()]
        assert judge(ref, got, None, cosine_params(), ["out"])["passed"] is passes


def sidecar(precision: str, extra: dict) -> Sidecar:
    return Sidecar(name=f"torch-{precision}-compile", backend="torch", backend_version="2.11.0", precision=precision,
                   device_slug="h100-80gb-hbm3", device_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
                   input_profile={"io": BERT_IO.model_dump(mode="json"), "min_batch": 1, "max_batch": 8},
                   source="m", source_sha256="0" * 64, engine_file="e.safetensors", build_seconds=1.0,
                   extra={"model_spec": "m", "mode": "compile", "channels_last": True, **extra})


def test_the_compile_cache_is_keyed_by_torchao_version_and_kept_layers():
    lp = {"low_precision": {"torchao": "0.17.0"}}
    a = torch_backend.compile_recipe(sidecar("int8", {**lp, "keep_layers": []}))
    b = torch_backend.compile_recipe(sidecar("int8", {**lp, "keep_layers": ["fc"]}))
    c = torch_backend.compile_recipe(sidecar("int8", {"low_precision": {"torchao": "0.18.0"}, "keep_layers": []}))
    assert a["torchao"] == "0.17.0" and len({str(a), str(b), str(c)}) == 3
    assert torch_backend.compiled_versions(sidecar("fp8", lp)).endswith("-torchao-0.17.0")
    assert "torchao" not in torch_backend.compile_recipe(sidecar("fp16", {}))
    assert torch_backend.build_record(sidecar("int8", lp)) == lp
