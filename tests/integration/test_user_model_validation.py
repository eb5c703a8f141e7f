"""A user's model without labels is validated by top-1 agreement with its FP32 reference. Through the stage
functions: the runner's handling of a user's module in the stage kernels is shown by the encoder chain
(tests/e2e/test_your_model.py) and the fleet (tests/e2e/test_fleet.py)."""

import pytest

from scaleproof.config import Params
from scaleproof.stages import build, calibrate, export, validate
from tests import ROOT


@pytest.mark.slow
def test_user_model_validates_by_agreement(tmp_path):
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml", {"model": "tests.user_models:tiny_convnet",
                                                               "input_shape": [3, 16, 16]})
    params = params.with_(run_dir=str(tmp_path))
    export.run(params)
    calibrate.run(params)
    build.run(params)
    validated = validate.run(params)
    assert "agreement" in validated["metric"] and "min_agreement" in validated["gate"]
    assert all("top1" not in e for e in validated["engines"])
    assert {e["engine"] for e in validated["engines"]} >= {"torch-fp32", "onnxruntime-fp32"}
