"""Ties, not coin flips: when the fastest engines' confirmed capacity ranges overlap, the cost report, its HTML
summary and the run's last lines say so, and the stated rule (the more accurate, then the cheaper) names the
headline engine, whichever of them came out on top this time."""

import json
import shutil

import pytest

from scaleproof import pipeline, results, stages
from scaleproof.config import Params
from scaleproof.cost import HEADLINE_RULE, headline_engine
from scaleproof.presentation.cost_report import summary_markdown
from scaleproof.stages import cost_report
from tests.ledger_runs import STORED

H100_X2 = STORED / "gpu-2026-11-26e" / "h100-x2-priced"


def priced(engine, qps, top, usd):
    return {"engine": engine, "qps": qps, "usd_per_1m": usd, "range": {"accelerator_qps": [qps, top]}}


# the two default runs of one commit on the 2-core machine: FP32 at 30,508 QPS, then INT8 at 27,490 QPS
ACCURACY = {"onnxruntime-fp32": (1.0, -1e-6), "onnxruntime-int8": (0.99, -0.03), "torch-fp32": (1.0, 0.0)}


@pytest.mark.parametrize(("fp32", "int8"), [((30508, 31900), (27490, 30700)), ((28100, 30500), (30100, 31500))],
                         ids=["fp32-on-top", "int8-on-top"])
def test_overlapping_ranges_are_a_tie_named_by_the_rule_whichever_engine_came_out_on_top(fp32, int8):
    engines = [priced("torch-fp32", 4000, 4400, 0.02), priced("onnxruntime-fp32", *fp32, 0.0030),
               priced("onnxruntime-int8", *int8, 0.0031)]
    best = headline_engine(engines, ACCURACY)
    assert best["engine"] == "onnxruntime-fp32"  # the more accurate of the tied engines, both times
    assert best["tied"] == ["onnxruntime-fp32", "onnxruntime-int8"] and best["rule"] == HEADLINE_RULE
    assert best["words"].startswith("tie: the confirmed capacity ranges of") and "overlap" in best["words"]


def test_a_lead_beyond_the_range_names_the_fastest_and_no_tie():
    engines = [priced("onnxruntime-fp32", 20000, 22000, 0.004), priced("onnxruntime-int8", 27490, 30700, 0.003)]
    best = headline_engine(engines, ACCURACY)
    assert best["engine"] == "onnxruntime-int8" and best["tied"] == [] and best["words"] is None


def test_equally_accurate_tied_engines_go_to_the_cheaper_then_the_name():
    engines = [priced("b", 1000, 1200, 0.02), priced("a", 1100, 1150, 0.03), priced("c", 1050, 1100, 0.02)]
    assert headline_engine(engines, {})["engine"] == "b"  # b and c cost the same per 1M: the name decides
    engines[0]["usd_per_1m"] = 0.025
    assert headline_engine(engines, {})["engine"] == "c"
    assert headline_engine([], {}) is None


def test_stage_06_declares_the_tie_in_its_json_summary_and_the_runs_last_line(tmp_path):
    """The two-H100 run's engines with torch-fp32's capacity range widened to reach torch-fp16-compile's: a tie,
    and the report, cost_report.json and the line `scaleproof run` prints at the end say so."""
    for stage in ("validate", "benchmark"):
        (tmp_path / stage).mkdir()
        shutil.copy(H100_X2 / f"{stage}.json", tmp_path / stage / f"{stage}.json")
    shutil.copy(H100_X2 / "manifest.json", tmp_path / "manifest.json")
    params = Params.from_yaml(H100_X2 / "params.yaml").with_(run_dir=str(tmp_path))
    untied = cost_report.run(params)
    assert untied["best"] == "torch-fp16-compile" and untied["best_tie"] is None
    bench_file = tmp_path / "benchmark" / "benchmark.json"
    bench = json.loads(bench_file.read_text())
    slow = next(e for e in bench["engines"] if e["engine"] == "torch-fp32")
    slow["capacity"]["qps_upper"] = 19000.0  # its range now overlaps torch-fp16-compile's 18,676-22,029
    bench_file.write_text(json.dumps(bench))
    cost = cost_report.run(params)
    assert cost["best_tie"]["tied"] == ["torch-fp16-compile", "torch-fp32"]
    # both agree with FP32 on every sample; FP32 itself has the smaller output error: it heads the tie
    validated = stages.read_typed(tmp_path, "04_validate")
    errs = {v.engine: v.output_err for v in validated.engines}
    assert errs["torch-fp32"] < errs["torch-fp16-compile"] and cost["best"] == "torch-fp32"
    text = summary_markdown(stages.read_typed(tmp_path, "06_cost_report"), validated,
                            results.ExportResult.model_construct(model="zoo:resnet50"))
    assert "Tie, not a winner" in text and "922–19,000 QPS" in text
    assert "No engine is faster than the baseline `torch-fp32` beyond the measured spread" in text
    line, n = pipeline.headline(tmp_path)
    assert n == 2 and "tie: the confirmed capacity ranges of" in line and "torch-fp32 is named by the rule" in line
