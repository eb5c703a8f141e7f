"""What an auditor reads: the run and the measured hardware named at the top, methodology in plain words,
formatted numbers, plots over what was measured, and re-create commands that work when pasted."""

import json
import re

import pytest

from scaleproof import stages
from scaleproof.presentation import benchmark, cost_report


@pytest.mark.slow
def test_the_report_names_the_run_the_hardware_and_its_methods_in_plain_words(published):
    html = (published / "report.html").read_text()
    manifest = json.loads((published / "manifest.json").read_text())
    cpu = manifest["environment"]["cpu"]["model"]
    assert re.search(rf"Key results: .* measured on <strong>{re.escape(cpu)}</strong>", html)
    assert f"<code>{published.name}</code>" in html and "scaleproof commit" in html and "onnxruntime" in html
    assert "row <code>aws-c7i-large</code> of data/prices.csv" in html
    cost = stages.read_typed(published, "06_cost_report")
    bench = stages.read_typed(published, "05_benchmark")
    validated = stages.read_typed(published, "04_validate")
    method = cost_report.methodology_table(bench, validated, cost).data
    assert not any("{" in v for v in method["how"]), "a Python dict repr in the methodology"
    assert {"Peak search", "Pricing floor", "Dynamic batcher", "Accuracy gate"} <= set(method["what"])
    # smoke's 1 s floor is under the CPU default: the run says, first thing, that it is not a price
    assert "EXPLORATORY RUN, NOT PRICED" in html and "min_priced_duration_s=1 s is under the 10 s floor" in html
    assert "Batcher tuning" in html and "chosen: " in html
    engines = cost_report.engines_table(cost)
    assert all(re.fullmatch(r"[\d,]+", v) for v in engines["confirmed Server QPS"]) and \
        all(re.fullmatch(r"[\d,]+", v) for v in engines["instances"])
    fig = benchmark.plot_throughput(bench)
    measured = sorted({t.batch for e in bench.engines for t in e.timings})
    assert [int(t) for t in fig.axes[0].get_xticks()] == measured
    # the appendix's re-create command names the published folder, so it works when pasted
    assert f"scaleproof reproduce {published.resolve()}" in html
