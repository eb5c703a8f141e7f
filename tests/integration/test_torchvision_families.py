"""torchvision's own families (the `vision` extra, installed by `make test`) through the stages on the CPU,
with a torchvision whose C++ ops may not load beside this torch (PyPI's wheel is linked against CUDA torch)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from scaleproof.config import Params
from scaleproof.stages import build, calibrate, export, validate
from scaleproof.zoo import load_model

FAST = dict(calib_samples=32, val_samples=32, batch_sizes=[1, 8], max_batch=8, batcher_max_batch=8, min_time_s=0.05, max_cov=0.5,
            warmup=2, min_repeats=5, sensitivity=False)


def test_torchvision_imports_and_says_what_it_cannot_do():
    import torchvision as tv

    from scaleproof import torchvision_compat

    boxes, scores = torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1.1]]), torch.tensor([0.9, 0.8])
    if tv.extension._has_ops():  # a torchvision built for this torch: its ops work, nothing was declared
        assert tv.ops.nms(boxes, scores, 0.5).tolist() == [0] and not torchvision_compat._declared
    else:  # the models load; an op that needs the C++ library says so, not a crash or a wrong answer
        assert torch.version.cuda is None and torchvision_compat._declared
        with pytest.raises(RuntimeError, match="Couldn't load custom C\\+\\+ ops"):
            tv.ops.nms(boxes, scores, 0.5)


def test_transformers_imports_beside_the_installed_torchvision_and_a_lookup_declares_nothing():
    """transformers imports torchvision whenever it is installed: that import must work in a fresh process too,
    and a mere lookup (torch.onnx's exporter and transformers make them) must not import or declare anything."""
    code = ("import importlib.util, sys, scaleproof\n"
            "from scaleproof import torchvision_compat as c\n"
            "importlib.util.find_spec('torchvision')\n"
            "assert 'torchvision' not in sys.modules and not c._declared\n"
            "from transformers import BertConfig, BertModel\n"
            "BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8))\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("spec, shape", [("zoo:resnet50", [3, 224, 224]),
                                         ("torchvision.models:efficientnet_b0", [3, 64, 64]),
                                         ("torchvision.models:vit_b_16", [3, 224, 224])])
def test_torchvision_families_load_and_answer_at_the_input_shape(spec, shape):
    bundle = load_model(spec, shape)
    with torch.no_grad():
        out = bundle.module(torch.randn(2, *shape))
    assert bundle.io.outputs == ["logits"] and out[0].shape == (2, 1000) and torch.isfinite(out[0]).all()


def test_resnet18_goes_through_export_calibrate_build_and_validate(tmp_path):
    x = np.random.default_rng(0).standard_normal((64, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "data.npz", input=x)
    params = Params.parse(dict(run_dir=str(tmp_path / "run"), model="torchvision.models:resnet18",
                               input_shape=[3, 32, 32], calib_data=str(tmp_path / "data.npz"),
                               val_data=str(tmp_path / "data.npz"), **FAST))
    exported = export.run(params)
    assert exported["parity"]["max_rel_err"] < 1e-4 and exported["onnx_input_dims"] == {"input": ["batch", 3, 32, 32]}
    assert calibrate.run(params)["qdq"]["int8_nodes"] > 0
    build.run(params)
    validated = validate.run(params)
    rows = {r["engine"]: r for r in validated["engines"]}
    assert validated["metric"] == "agreement" and set(rows) == {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    assert rows["onnxruntime-fp32"]["passed"] and rows["onnxruntime-fp32"]["output_err"] < 1e-4
