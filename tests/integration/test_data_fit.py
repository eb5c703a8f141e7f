"""Data and weights that cannot fit the model are refused before anything is measured: labels outside the judged
output's classes (naming the first bad value), and weights whose dtype differs from the parameters'."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from scaleproof.config import Params
from scaleproof.errors import ArtifactError, ParamsError
from scaleproof.stages import export
from scaleproof.zoo import load_user_weights


def digits_data(path, labels):
    x = np.random.default_rng(0).random((len(labels), 1, 8, 8), dtype=np.float32)
    np.savez(path, input=x, labels=np.asarray(labels, np.int64))
    return str(path)


def test_labels_outside_the_classes_are_refused_by_01_export(tmp_path):
    data = digits_data(tmp_path / "d.npz", list(range(10, 20)) * 8)  # 10..19 for a 10-class output
    params = Params(run_dir=str(tmp_path / "run"), model="zoo:digits-cnn", calib_data=data, val_data=data,
                    calib_samples=32)
    with pytest.raises(ParamsError, match=r"label 1\d \(row \d+ of the \w+ split, \d+ such rows\) is outside the 10 "
                                          r"classes \(0\.\.9\) of output"):
        export.run(params)
    assert not (tmp_path / "run" / "export" / "export.json").exists()


def test_labels_inside_the_classes_still_export(tmp_path):
    data = digits_data(tmp_path / "d.npz", list(range(10)) * 8)
    params = Params(run_dir=str(tmp_path / "run"), model="zoo:digits-cnn", calib_data=data, val_data=data,
                    calib_samples=32)
    assert export.run(params)["dataset"] == "user"


@pytest.mark.parametrize("dtype", [torch.int8, torch.float16])
def test_weights_of_another_dtype_are_refused(tmp_path, dtype):
    from torchvision.models import mobilenet_v3_small

    model = mobilenet_v3_small(weights=None)
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    with pytest.raises(ArtifactError, match=rf"have 2\d\d tensor\(s\) of another dtype than the model's parameters: "
                                            rf"\S+ \({dtype} in the file, torch\.float32 in the model\)"):
        load_user_weights(mobilenet_v3_small(weights=None), tmp_path / "w.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "ok.safetensors")
    load_user_weights(mobilenet_v3_small(weights=None), tmp_path / "ok.safetensors")  # its own dtype loads
