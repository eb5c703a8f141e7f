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


def searches(*engines):
    """Two VALID repeated peaks per engine: the confirmed capacity's search and one reaching the range's top."""
    return {e["engine"]: [e["qps"], e["range"]["accelerator_qps"][1]] for e in engines}


# the two default runs of one commit on the 2-core machine: FP32 at 30,508 QPS, then INT8 at 27,490 QPS
ACCURACY = {"onnxruntime-fp32": (1.0, -1e-6), "onnxruntime-int8": (0.99, -0.03), "torch-fp32": (1.0, 0.0)}


@pytest.mark.parametrize(("fp32", "int8"), [((30508, 31900), (27490, 30700)), ((28100, 30500), (30100, 31500))],
                         ids=["fp32-on-top", "int8-on-top"])
def test_overlapping_ranges_are_a_tie_named_by_the_rule_whichever_engine_came_out_on_top(fp32, int8):
    engines = [priced("torch-fp32", 4000, 4400, 0.02), priced("onnxruntime-fp32", *fp32, 0.0030),
               priced("onnxruntime-int8", *int8, 0.0031)]
    best = headline_engine(engines, ACCURACY, searches(*engines))
    assert best["engine"] == "onnxruntime-fp32"  # the more accurate of the tied engines, both times
    assert best["tied"] == ["onnxruntime-fp32", "onnxruntime-int8"] and best["rule"] == HEADLINE_RULE
    assert best["words"].startswith("tie: the confirmed capacity ranges of") and "overlap" in best["words"]


def test_a_lead_beyond_the_range_names_the_fastest_and_no_tie():
    engines = [priced("onnxruntime-fp32", 20000, 22000, 0.004), priced("onnxruntime-int8", 27490, 30700, 0.003)]
    best = headline_engine(engines, ACCURACY, searches(*engines))
    assert best["engine"] == "onnxruntime-int8" and best["tied"] == [] and best["words"] is None


def test_equally_accurate_tied_engines_go_to_the_cheaper_then_the_name():
    engines = [priced("b", 1000, 1200, 0.02), priced("a", 1100, 1150, 0.03), priced("c", 1050, 1100, 0.02)]
    same = dict.fromkeys("abc", (1.0,))
    assert headline_engine(engines, same, searches(*engines))["engine"] == "b"  # b, c: same cost, the name decides
    engines[0]["usd_per_1m"] = 0.025
    assert headline_engine(engines, same, searches(*engines))["engine"] == "c"
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
    slow["capacity"]["qps_upper"] = 19000.0  # an INVALID target above the leader's confirmed 18,676: no tie
    bench_file.write_text(json.dumps(bench))
    assert cost_report.run(params)["best_tie"] is None
    slow["server"]["dynamic_repeats"][0]["peak_qps"] = 19000.0  # a VALID repeated peak above it: a tie
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


def test_an_invalid_bracket_top_is_no_tie():
    """INT8 confirmed at 11,520 whose one search's INVALID target reached 40,583 is not tied with FP32 at 38,622:
    its VALID peaks stop at 11,900."""
    engines = [priced("onnxruntime-fp32", 38622, 39500, 0.001), priced("onnxruntime-int8", 11520, 40583, 0.003)]
    peaks = {"onnxruntime-fp32": [38622, 39500], "onnxruntime-int8": [11700, 11900]}
    best = headline_engine(engines, ACCURACY, peaks)
    assert best["engine"] == "onnxruntime-fp32" and best["tied"] == []


def test_a_slower_more_accurate_engine_ties_only_with_two_valid_searches():
    engines = [priced("onnxruntime-int8", 30000, 31000, 0.001), priced("onnxruntime-fp32", 1500, 30500, 0.02)]
    one_search = {"onnxruntime-int8": [30000, 31000], "onnxruntime-fp32": [30500]}
    assert headline_engine(engines, ACCURACY, one_search)["engine"] == "onnxruntime-int8"
    assert headline_engine(engines, ACCURACY)["engine"] == "onnxruntime-int8"  # no searches recorded: no tie
    two = {**one_search, "onnxruntime-fp32": [1500, 30500]}
    assert headline_engine(engines, ACCURACY, two)["tied"] == ["onnxruntime-fp32", "onnxruntime-int8"]


def test_an_engine_missing_from_the_accuracy_map_ranks_last_among_the_tied():
    engines = [priced("mystery", 30000, 31000, 0.001), priced("onnxruntime-int8", 29000, 30500, 0.002)]
    best = headline_engine(engines, ACCURACY, searches(*engines))
    assert best["tied"] == ["mystery", "onnxruntime-int8"] and best["engine"] == "onnxruntime-int8"


def test_ties_are_judged_against_the_leader_only_not_from_engine_to_engine():
    """b overlaps the leader a, c overlaps b but not a: c is not tied (the rule says so)."""
    engines = [priced("a", 10000, 10500, 0.01), priced("b", 9000, 10200, 0.011), priced("c", 8000, 9500, 0.012)]
    best = headline_engine(engines, dict.fromkeys("abc", (1.0,)), searches(*engines))
    assert best["tied"] == ["a", "b"] and "against the leader only" in HEADLINE_RULE
    assert "overlap the leader a's" in best["words"]
