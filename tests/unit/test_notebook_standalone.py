"""A notebook run on its own with papermill: an unknown parameter is refused (papermill only warns), the run folder
is the repository's outputs/ whatever the working directory, and upstream results made with other parameters are
refused with the parameters that differ."""

import pytest

from scaleproof import stages
from scaleproof.config import Params, injected_names
from scaleproof.errors import ArtifactError, ParamsError
from scaleproof.paths import notebooks_dir


def test_names_papermill_injected_are_read_from_its_cell():
    cells = ["import x", "# Parameters\nseed = 1\nno_such_param = 1\n", "params = 1"]
    assert injected_names(cells) == ["seed", "no_such_param"]
    assert injected_names(["seed = 3"]) == []  # a user's own cell is not papermill's


def test_an_unknown_injected_parameter_is_refused():
    ns = {"In": ["", "run_dir = '../outputs/dev'", "# Parameters\nno_such_param = 1\n"], "no_such_param": 1}
    with pytest.raises(ParamsError, match=r"unknown notebook parameter\(s\) \['no_such_param'\]"):
        Params.from_namespace(ns)


def test_a_relative_run_dir_is_taken_from_the_notebooks_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = Params.from_namespace({"run_dir": "../outputs/dev"})
    assert params.run_path == (notebooks_dir().parent / "outputs" / "dev").resolve()


def test_a_result_made_with_other_parameters_is_refused_by_the_next_stage(tmp_path):
    made = Params(run_dir=str(tmp_path), seed=0)
    exported = {"model": "zoo:digits-cnn", "io": {}, "input_names": ["input"], "output_names": ["logits"],
                "onnx": "model.onnx", "onnx_sha256": "0" * 64, "onnx_input_dims": {"input": ["batch", 1, 8, 8]},
                "onnx_nodes": 10, "opset": 18, "exporter": "dynamo", "weights": None, "parameters": 28842,
                "parity": {"samples": 0, "max_rel_err": 0.0, "finite": True, "outputs": {}},
                "reference_degenerate": {}}
    stages.write_result(made.run_path, "01_export", exported, made)
    assert stages.read_result(tmp_path, "01_export")["made_with"]["seed"] == 0
    assert stages.require(made, "01_export")["onnx"] == "model.onnx"
    with pytest.raises(ArtifactError, match=r"made with other parameters \(seed=0 there, 1 here\)"):
        stages.require(made.with_(seed=1), "01_export")
    # a parameter 01_export does not declare may differ: its result still belongs
    assert stages.require(made.with_(sla_p99_ms=50.0), "01_export")["onnx"] == "model.onnx"


def test_a_sample_count_larger_than_the_data_is_reported_not_silently_cut():
    from scaleproof.datasets import adjusted
    from scaleproof.presentation import calibrate
    from scaleproof.results import CalibrateResult

    adj = adjusted("calib_samples", 512, 270, "calibration")
    assert adj == [{"parameter": "calib_samples", "asked": 512, "used": 270,
                    "why": "the calibration split has 270 samples"}]
    assert adjusted("val_samples", 0, 360, "validation") == []  # 0 means the whole split: nothing changed
    calibrated = CalibrateResult.model_validate({
        "stage": "02_calibrate", "reference": "FP32 ONNX model on ONNX Runtime (CPU)", "val_samples": 360,
        "adjusted": adj, "metric": "top1", "gate": {"max_output_err": 0.25}, "reference_degenerate": None,
        "statement": "no INT8 model: int8 is not in precisions"})
    assert "calib_samples 512 → 270 used: the calibration split has 270 samples" in calibrate.adjusted_words(calibrated)


def test_a_profile_fills_what_still_has_the_notebooks_default(tmp_path, monkeypatch):
    """SCALEPROOF_PARAMS=params/smoke.yaml: a notebook run on its own takes the profile's values, except where the
    user changed the cell or papermill injected a value."""
    profile = tmp_path / "p.yaml"
    profile.write_text("loadgen_min_duration_s: 0.3\nseed: 5\nsla_p99_ms: 50\n")
    monkeypatch.setenv("SCALEPROOF_PARAMS", str(profile))
    ns = {"In": ["", "run_dir = '../outputs/dev'"], "loadgen_min_duration_s": 1.0, "seed": 3, "sla_p99_ms": 15.0}
    p = Params.from_namespace(ns)
    assert p.loadgen_min_duration_s == 0.3 and p.sla_p99_ms == 50  # the cell's defaults: the profile's values
    assert p.seed == 3  # changed in the cell: kept
    injected = Params.from_namespace({**ns, "In": ["", "# Parameters\nsla_p99_ms = 15.0\n"]})
    assert injected.loadgen_min_duration_s == 1.0 and injected.sla_p99_ms == 15.0  # papermill ran it: no profile
