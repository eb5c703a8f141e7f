import numpy as np
import pytest

from scaleproof import stages
from scaleproof.datasets import Split
from scaleproof.errors import ParamsError
from scaleproof.io_spec import ModelIO
from scaleproof.quantization.quantizers import check_calibration_data


@pytest.mark.parametrize("x, message", [
    (np.zeros((0, 1, 8, 8), np.float32), "is empty"),
    (np.zeros((4, 1, 8, 8), np.float64), "has dtype float64"),
    (np.zeros((4, 3, 8, 8), np.float32), r"has shape \(4, 3, 8, 8\); expected input: \(N, 1, 8, 8\) float32"),
    (np.full((4, 1, 8, 8), np.nan, np.float32), "NaN"),
])
def test_bad_calibration_data_is_refused_naming_the_input(x, message):
    with pytest.raises(ParamsError, match=message) as e:
        check_calibration_data(Split({"input": x}, None), ModelIO.single((1, 8, 8)))
    assert "'input'" in str(e.value)


def test_int8_model_is_explicit_qdq_and_recorded(digits_run):
    r = stages.read_result(digits_run.run_path, "02_calibrate")
    assert r["qdq"]["quantize_nodes"] > 0 and r["qdq"]["dequantize_nodes"] > 0
    assert r["calib_samples"] == 128 and sum(r["calib_labels"]) == 128
    assert len(r["calib_data_sha256"]) == 64 and r["quantizer_version"]


def test_int8_keeps_digits_accuracy_within_one_point(digits_run):
    v = stages.read_result(digits_run.run_path, "04_validate")
    int8 = next(e for e in v["engines"] if e["engine"] == "onnxruntime-int8")
    assert int8["passed"] and int8["top1_delta_pts"] >= -1.0 and int8["top1"] >= 0.97
