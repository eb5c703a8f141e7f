import numpy as np
import onnxruntime as ort
import pytest

from scaleproof import export, stages
from scaleproof.config import Params
from scaleproof.errors import AccuracyError


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_user_model_exports_with_dynamic_batch(tmp_path, exporter):
    params = Params(run_dir=str(tmp_path), model="tests.user_models:tiny_convnet", input_shape=[3, 16, 16],
                    exporter=exporter)
    result = export.run(params)
    dims = result["onnx_input_dims"]["input"]
    assert dims[1:] == [3, 16, 16] and isinstance(dims[0], str)
    assert result["parity"]["max_rel_err"] < 1e-4 and result["parity"]["top1_agreement"] == 1.0
    assert stages.read_result(tmp_path, "01_export")["onnx_sha256"] == result["onnx_sha256"]
    sess = ort.InferenceSession(str(tmp_path / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 3, 17):  # any batch size runs
        assert sess.run(None, {"input": np.zeros((n, 3, 16, 16), np.float32)})[0].shape == (n, 5)


def test_parity_measures_error_and_agreement():
    ref = np.array([[1.0, 2.0], [3.0, 0.0]], np.float32)
    out = np.array([[1.0, 2.5], [-1.0, 0.0]], np.float32)
    p = export.parity(ref, out)
    assert p["max_abs_err"] == 4.0 and p["top1_agreement"] == 0.5 and p["finite"]
    assert p["max_rel_err"] == pytest.approx(4.0 / 3.0)


def test_parity_gate_stops_the_stage(tmp_path):
    params = Params(run_dir=str(tmp_path), parity_atol=1e-12)
    with pytest.raises(AccuracyError, match="parity_atol"):
        export.run(params)
    assert not (tmp_path / "export" / "export.json").exists()
