"""Stage 06 over stored results: an engine not confirmed (clearly behind the leader's searches) is reported with its
label and never priced nor named in the headline; a baseline that could not be measured leaves the other engines
priced under a headline that says so, with no speed-up against it."""

import copy
import json
import shutil

from scaleproof import pipeline, results, stages
from scaleproof.config import Params
from scaleproof.presentation.cost_report import engines_table, summary_markdown
from scaleproof.stages import cost_report
from tests.ledger_runs import STORED

H100_X2 = STORED / "gpu-2026-11-26e" / "h100-x2-priced"  # torch-fp32 baseline and torch-fp16-compile
PLANTED = "torch-fp16-planted"  # a copy of torch-fp16-compile's results under another name: a third engine


def stored_run(tmp_path, edit) -> Params:
    """The stored two-H100 run with a third engine planted, its benchmark rows passed to `edit` by name."""
    files = {}
    for stage in ("validate", "benchmark"):
        (tmp_path / stage).mkdir(parents=True)
        files[stage] = json.loads((H100_X2 / f"{stage}.json").read_text())
        planted = copy.deepcopy(next(e for e in files[stage]["engines"] if e["engine"] == "torch-fp16-compile"))
        files[stage]["engines"].append({**planted, "engine": PLANTED})
    files["validate"]["passed"].append(PLANTED)
    edit({e["engine"]: e for e in files["benchmark"]["engines"]})
    for stage, data in files.items():
        (tmp_path / stage / f"{stage}.json").write_text(json.dumps(data))
    shutil.copy(H100_X2 / "manifest.json", tmp_path / "manifest.json")
    return Params.from_yaml(H100_X2 / "params.yaml").with_(run_dir=str(tmp_path))


def summary(tmp_path) -> str:
    return summary_markdown(stages.read_typed(tmp_path, "06_cost_report"), stages.read_typed(tmp_path, "04_validate"),
                            results.ExportResult.model_construct(model="zoo:resnet50"))


def test_an_engine_not_confirmed_is_labelled_and_not_priced(tmp_path):
    before = cost_report.run(stored_run(tmp_path / "a", lambda e: None))
    assert PLANTED in [e["engine"] for e in before["engines"]]  # confirmed, it would be priced
    best, other = "torch-fp16-compile", PLANTED
    label = f"not confirmed: behind {best} by 40% (highest search peak 60 QPS, {best}'s lowest 100 QPS; confirm: all " \
            "prices it)"

    def behind(engines):
        engines[other].update(capacity=None, capacity_reason=label, not_confirmed=label)
        engines[other]["server"]["confirmation"] = None

    cost = cost_report.run(stored_run(tmp_path / "b", behind))
    assert other not in [e["engine"] for e in cost["engines"]] and cost["best"] == best
    assert not (cost["best_tie"] or {}).get("tied")  # a copy of the leader, yet no tie: not confirmed, not priced
    excluded = next(x for x in cost["excluded"] if x["engine"] == other)
    assert excluded["reason"] == label and excluded["not_confirmed"] and len(excluded["search_peaks_qps"]) >= 1
    assert not any(c["id"].startswith(f"{other}.") for c in cost["claims"])
    text = summary(tmp_path / "b")
    assert f"`{other}` {label}: searched, not priced" in text
    table = engines_table(stages.read_typed(tmp_path / "b", "06_cost_report"))
    assert other not in table.index


def test_a_baseline_not_measured_leaves_a_headline_consistent_with_the_tables(tmp_path):
    reason = "no VALID Server run in search 1: not measurable within the duration budget: the latency bound held up to " \
             "5.1 QPS, but LoadGen's early stopping needs about 665 queries there"

    def unmeasured(engines):
        engines["torch-fp32"].update(capacity=None, capacity_reason=reason)

    cost = cost_report.run(stored_run(tmp_path, unmeasured))
    assert cost["engines"] and cost["baseline"] is None and cost["best"]
    text = summary(tmp_path)
    assert "No engine could be priced" not in text
    assert "The baseline could not be priced** (not priced: no VALID Server run in search 1: not measurable" in text
    table = engines_table(stages.read_typed(tmp_path, "06_cost_report"))
    assert set(table["speed-up"]) == {"n/a: no priced baseline"}  # never 1.00x for an engine with no baseline
    line, n = pipeline.headline(tmp_path)
    assert n == len(cost["engines"]) and "baseline" in line and "could not be priced" in line


def test_the_benchmark_table_shows_the_search_peaks_and_the_label(tmp_path):
    from scaleproof.presentation.benchmark import loadgen_table

    label = "not confirmed: behind torch-fp16-compile by 40% (its search range tops at 60 QPS, torch-fp16-compile's " \
            "lowest 100 QPS; confirm: all prices it)"

    def behind(engines):
        engines[PLANTED].update(capacity=None, capacity_reason=label, not_confirmed=label)

    stored_run(tmp_path, behind)
    table = loadgen_table(stages.read_typed(tmp_path, "05_benchmark"))
    assert table.loc[PLANTED, "priced capacity QPS"] == "not confirmed: behind torch-fp16-compile by 40%"
    peaks = table.loc[PLANTED, "search peaks QPS"].split(" / ")
    assert len(peaks) == 2 and all(p.replace(",", "").isdigit() for p in peaks)  # the stored run searched twice
    assert table.loc["torch-fp16-compile", "priced capacity QPS"].replace(",", "").isdigit()
