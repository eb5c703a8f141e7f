"""Typed stage results: a result of another format version or one that breaks its stage's contract is refused
with what to do; the committed JSON Schemas are those of the models."""

import json
import sys

import pytest

from scaleproof import results, stages
from scaleproof.errors import ArtifactError
from tests import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import export_result_schemas  # noqa: E402

VALIDATED = {"reference": "PyTorch FP32 eager", "samples": 120, "metric": "top1", "metric_words": "top-1 accuracy vs labels",
             "judged_output": "logits", "gate": {"max_output_err": 0.25}, "reference_degenerate": None,
             "engines": [{"engine": "torch-fp32", "backend": "torch", "precision": "fp32", "passed": True,
                          "reason": "within gate", "metric": "top1", "top1": 0.99, "output_err": 0.0,
                          "per_output": {"logits": 0.0}}],
             "passed": ["torch-fp32"], "failed": []}


def test_a_result_is_written_with_its_format_and_read_back_typed_with_what_the_model_does_not_name(tmp_path):
    stages.write_result(tmp_path, "04_validate", VALIDATED)
    raw = json.loads((tmp_path / "validate" / "validate.json").read_text())
    assert raw["result_format"] == results.FORMAT and raw["stage"] == "04_validate"
    typed = results.check("04_validate", stages.read_result(tmp_path, "04_validate"), "validate.json")
    assert isinstance(typed, results.ValidateResult)
    assert typed.engine("torch-fp32").top1 == 0.99
    assert typed.engines[0].per_output == {"logits": 0.0}  # kept as written


def test_a_result_of_another_format_is_refused_with_what_to_do(tmp_path):
    stages.write_result(tmp_path, "04_validate", VALIDATED)
    path = tmp_path / "validate" / "validate.json"
    for other in (results.FORMAT + 1, None):  # a newer release's file, and one from before formats existed
        raw = json.loads(path.read_text())
        raw.pop("result_format") if other is None else raw.update(result_format=other)
        path.write_text(json.dumps(raw))
        with pytest.raises(ArtifactError, match=r"result of format \d+; this scaleproof reads format 1\. Rerun stage"):
            stages.read_result(tmp_path, "04_validate")


def test_a_stage_that_breaks_its_contract_fails_when_it_writes(tmp_path):
    broken = {**VALIDATED, "engines": [{"engine": "torch-fp32", "passed": "yes, mostly"}]}
    with pytest.raises(ArtifactError, match="does not hold a valid 04_validate result"):
        stages.write_result(tmp_path, "04_validate", broken)
    assert not (tmp_path / "validate" / "validate.json").exists()


def test_the_committed_schemas_are_the_models_schemas():
    committed = {p.name: p.read_text() for p in (ROOT / "docs" / "schemas").glob("*.schema.json")}
    assert committed == export_result_schemas.rendered(), "run: python scripts/export_result_schemas.py"
    assert set(results.MODELS) == set(stages.STAGE_MODULES)  # every stage's result has a model


def test_a_validate_result_with_failed_engines_is_written(tmp_path):
    failing = {**VALIDATED, "engines": [*VALIDATED["engines"], {
        "engine": "onnxruntime-int8", "backend": "onnxruntime", "precision": "int8", "passed": False,
        "reason": "top-1 dropped 3.1 pt (gate 1 pt)", "crashed": False}],
        "failed": [{"engine": "onnxruntime-int8", "reason": "top-1 dropped 3.1 pt (gate 1 pt)"}]}
    stages.write_result(tmp_path, "04_validate", failing)
    typed = results.check("04_validate", stages.read_result(tmp_path, "04_validate"), "validate.json")
    assert typed.failed[0]["engine"] == "onnxruntime-int8" and not typed.engine("onnxruntime-int8").passed

