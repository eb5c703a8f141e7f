"""The whole chain through the runner (papermill), and its failure paths: nothing half-done is published."""

import json

import pytest

from scaleproof.cli import main
from scaleproof.config import Params
from scaleproof.errors import ParamsError
from scaleproof.paths import STAGES
from scaleproof.provenance import sha256_file
from scaleproof.run_folders import claim as claim_run_folder
from tests import ROOT

SMOKE = ROOT / "params" / "smoke.yaml"


@pytest.mark.slow
def test_default_chain_publishes_a_hashed_run_with_its_report(published):
    run = published
    assert run.name == "published" and run.is_dir()
    assert not any((run.parent / ".staging").iterdir()), "staging folder left behind"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and [s["status"] for s in manifest["stages"]] == ["succeeded"] * 6
    for rel, meta in manifest["artifacts"].items():
        assert sha256_file(run / rel) == meta["sha256"], rel
    for must in ("report.html", "export/model.onnx", "calibrate/model.int8.onnx", "benchmark/benchmark.json",
                 "notebooks/06_cost_report.ipynb", "params.yaml", "logs/run.log"):
        assert must in manifest["artifacts"]
    env = manifest["environment"]
    assert env["packages"]["onnxruntime"] and env["cpu"]["model"] and "commit" in env["git"]
    assert manifest["params"]["calib_samples"] == 64
    run_log = (run / "logs" / "run.log").read_text()  # the runner's record: every stage's start and end, timed
    assert all(f"INFO scaleproof.pipeline: {s} done in" in run_log for s in STAGES)

    validated = json.loads((run / "validate" / "validate.json").read_text())
    int8 = next(e for e in validated["engines"] if e["engine"] == "onnxruntime-int8")
    assert int8["passed"] and int8["top1_delta_pts"] >= -1.0
    bench = json.loads((run / "benchmark" / "benchmark.json").read_text())
    assert {e["engine"] for e in bench["engines"]} == {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    for e in bench["engines"]:  # every engine went through LoadGen's three scenarios, logs kept and hashed
        assert e["single_stream"]["scenario"] == "single_stream" and e["offline"]["scenario"] == "offline"
        for mode in ("dynamic", "static"):
            for r in e["server"][mode]["runs"]:
                assert f"{r['log_dir']}/mlperf_log_summary.txt" in manifest["artifacts"]
                assert f"{r['log_dir']}/mlperf_log_detail.txt" in manifest["artifacts"]
    cost = json.loads((run / "cost_report" / "cost_report.json").read_text())
    priced = {p["engine"]: p for p in cost["engines"]}
    for p in priced.values():  # smoke repeats the peak search: the range is the run-to-run spread
        assert p["range"]["source"].startswith("run-to-run spread of 2")
        assert p["range"]["annual_usd"][0] <= p["annual_usd"] == p["range"]["annual_usd"][1]
    assert cost["status"].startswith("exploratory, not priced")  # smoke's floor is under the 10 s CPU default
    for e in bench["engines"]:  # the cost model is fed only by what a VALID confirmation run achieved
        if e["capacity"] is None:
            assert e["engine"] not in priced and e["capacity_reason"]
        else:
            peaks = [s["peak_qps"] for s in [e["server"]["dynamic"], *e["server"]["dynamic_repeats"]]]
            conf = e["server"]["confirmation"]
            # the ladder starts at the highest rate every search vouched for (the lowest peak, or under it), or at
            # the share of it this run's earlier confirmations held
            assert conf["tries"][0]["target_qps"] == conf["start_qps"] <= min(peaks) and conf["run"]["valid"]
            assert priced[e["engine"]]["qps"] == e["capacity"]["qps"] == conf["run"]["qps"]
            assert conf["run"]["min_duration_s"] >= 1.0 and f"{conf['run']['log_dir']}/mlperf_log_detail.txt" in \
                manifest["artifacts"]

    html = (run / "report.html").read_text()
    assert "Key results" in html and html.count("<img") >= 2 and "where each claim comes from" in html
    assert "params = Params.from_namespace" not in html, "report must not show code"


def test_bad_parameter_stops_the_run_before_any_work(tmp_path, capsys):
    code = main(["run", "--params", str(SMOKE), "--set", "calib_sampels=10", "--outputs", str(tmp_path)])
    assert code == 2 and "calib_sampels: unknown parameter" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    code = main(["run", "--params", str(SMOKE), "--set", "batch_sizes=eight", "--outputs", str(tmp_path)])
    assert code == 2 and "batch_sizes" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_a_stage_that_raises_is_kept_as_a_failed_run_and_never_published(tmp_path, capsys):
    code = main(["run", "--params", str(SMOKE), "--set", "model=tests.user_models:broken", "--set",
                 "input_shape=[3, 8, 8]", "--outputs", str(tmp_path), "--run-id", "bad", "--quiet"])
    assert code == 1
    assert not (tmp_path / "bad").exists() and not (tmp_path / ".staging" / "bad").exists()
    failed = tmp_path / "failed" / "bad"
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "stage 01_export failed in cell" in manifest["error"] and "this factory is broken" in manifest["error"]
    assert manifest["stages"][-1]["status"] == "failed" and len(manifest["stages"]) == 1
    log = json.loads((failed / "notebooks" / "01_export.ipynb").read_text())
    assert any(o.get("ename") == "RuntimeError" for c in log["cells"] for o in c.get("outputs", []))
    assert "FAILED: stage 01_export" in capsys.readouterr().out


def test_two_runs_cannot_write_one_folder(tmp_path):
    claim_run_folder(tmp_path, "same")
    with pytest.raises(ParamsError, match="another run is writing"):
        claim_run_folder(tmp_path, "same")
    (tmp_path / "published").mkdir()
    with pytest.raises(ParamsError, match="already exists"):
        claim_run_folder(tmp_path, "published")
    with pytest.raises(ParamsError, match="must be letters"):
        claim_run_folder(tmp_path, "../escape")


def test_params_command_lists_every_parameter(capsys):
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in Params.model_fields)


def test_a_run_that_priced_nothing_says_so_and_exits_3(tmp_path, monkeypatch, capsys):
    from scaleproof import pipeline

    run = tmp_path / "r"
    (run / "cost_report").mkdir(parents=True)
    (run / "cost_report" / "cost_report.json").write_text(json.dumps({"engines": [], "best": None, "excluded": [
        {"engine": "torch-fp32", "reason": "failed validation: the FP32 reference is degenerate"}]}))
    (run / "manifest.json").write_text(json.dumps({"environment": {"gpu": None, "cpu": {"model": "AMD EPYC",
                                                                                          "usable_cores": 2}}}))
    text, priced = pipeline.headline(run)
    assert priced == 0 and text.startswith("NO ENGINE COULD BE PRICED on AMD EPYC (2 cores): torch-fp32: failed")
    monkeypatch.setattr(pipeline, "run_chain", lambda *a, **k: pipeline.RunOutcome("succeeded", run, priced=0))
    assert main(["run", "--params", str(SMOKE), "--outputs", str(tmp_path)]) == 3


@pytest.mark.slow
def test_the_headline_names_the_measured_hardware_and_the_best_engine(published):
    from scaleproof import pipeline

    text, priced = pipeline.headline(published)
    cost = json.loads((published / "cost_report" / "cost_report.json").read_text())
    assert priced == len(cost["engines"]) > 0 and f"{cost['best']} sustains" in text
    # smoke's floor is under the CPU default: the run's last words say it is not a price
    assert text.startswith("EXPLORATORY, NOT PRICED: on ") and "cores)" in text and "USD per 1M inferences" in text
