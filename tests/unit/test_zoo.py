import shutil

import numpy as np
import pytest
import torch

from scaleproof.datasets import digits_splits
from scaleproof.errors import ArtifactError, ParamsError
from scaleproof.paths import data_dir
from scaleproof.zoo import load_model


def test_digits_cnn_reaches_97_percent_on_held_out_digits():
    bundle = load_model("zoo:digits-cnn")
    val = digits_splits()["val"]
    with torch.inference_mode():
        top1 = (bundle.module(torch.from_numpy(val.x["input"]))[0].argmax(1).numpy() == val.y).mean()
    assert top1 >= 0.97
    assert "sha256" in bundle.weights and bundle.dataset == "digits" and len(bundle.weights_sha256) == 64


def test_changed_weights_are_refused(tmp_path, monkeypatch):
    shutil.copytree(data_dir(), tmp_path / "data")
    w = tmp_path / "data" / "weights" / "digits-cnn.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-1] ^= 0xFF
    w.write_bytes(bytes(blob))
    monkeypatch.setenv("SCALEPROOF_DATA", str(tmp_path / "data"))
    with pytest.raises(ArtifactError, match="the file changed"):
        load_model("zoo:digits-cnn")


def test_user_model_by_factory_path():
    bundle = load_model("tests.user_models:tiny_convnet", [3, 16, 16])
    out = bundle.module(torch.zeros(2, 3, 16, 16))[0]  # outputs come as a tuple, in output order
    assert out.shape == (2, 5) and bundle.dataset == "synthetic" and bundle.weights_sha256 is None
    # same seed, same init: the reference is reproducible
    again = load_model("tests.user_models:tiny_convnet", [3, 16, 16]).module(torch.zeros(2, 3, 16, 16))[0]
    assert np.array_equal(out.detach().numpy(), again.detach().numpy())


@pytest.mark.parametrize("spec, shape, message", [
    ("tests.user_models:tiny_convnet", [], "declare its inputs"),
    ("zoo:nope", [], "unknown zoo model"),
    ("tests.user_models:missing", [3, 8, 8], "has no attribute"),
    ("no_such_pkg.mod:f", [3, 8, 8], "cannot import module"),
    ("tests.user_models:not_a_module", [3], "not a torch.nn.Module"),
    ("zoo:digits-cnn", [3, 8, 8], "takes input_shape"),
])
def test_bad_model_specs(spec, shape, message):
    with pytest.raises(ParamsError, match=message):
        load_model(spec, shape)


def test_unnamed_tuple_outputs_take_the_declared_names_in_order():
    bundle = load_model("tests.user_models:two_heads", [3, 16, 16], outputs=["scores", "features"])
    scores, features = bundle.module(torch.zeros(2, 3, 16, 16))
    assert bundle.io.outputs == ["scores", "features"] and scores.shape == (2, 5) and features.shape == (2, 32)
    assert load_model("tests.user_models:two_heads", [3, 16, 16]).io.outputs == ["output_0", "output_1"]
    with pytest.raises(ParamsError, match=r"returns 2 tensor\(s\) but outputs declares 1"):
        load_model("tests.user_models:two_heads", [3, 16, 16], outputs=["scores"]).module(torch.zeros(1, 3, 16, 16))
