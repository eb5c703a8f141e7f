"""Stage 06 on the two-H100 run of 2026-11-26 (benchmarks/results/gpu-2026-11-26e/h100-x2-priced): a 2-GPU
instance is never credited more than its two GPUs sustained, and the report says how the factor was priced."""

import shutil

import pytest

from scaleproof import results, stages
from scaleproof.config import Params
from scaleproof.presentation.cost_report import summary_markdown
from scaleproof.stages import cost_report
from tests import ROOT

RUN = ROOT / "benchmarks" / "results" / "gpu-2026-11-26e" / "h100-x2-priced"


def test_a_two_gpu_instance_is_priced_at_most_at_what_two_gpus_sustained(tmp_path):
    for stage, name in (("validate", "validate.json"), ("benchmark", "benchmark.json")):
        (tmp_path / stage).mkdir()
        shutil.copy(RUN / name, tmp_path / stage / name)
    params = Params.from_yaml(RUN / "params.yaml").with_(run_dir=str(tmp_path))
    cost = cost_report.run(params)
    bench = stages.read_typed(tmp_path, "05_benchmark")
    two_gpus = bench.scaling.peak_qps["2"]  # 36,139 QPS confirmed for 30 s on both GPUs
    sc = cost["assumptions"]["scaling"]
    assert sc["accelerators_per_instance"] == 2 and sc["measured"]
    assert sc["factor"] == pytest.approx(two_gpus / (2 * 18675.9)) and sc["measured_factor"] == pytest.approx(1.044, abs=1e-3)
    best = next(e for e in cost["engines"] if e["engine"] == cost["best"])
    assert best["instance_qps"] == pytest.approx(two_gpus)  # not 2 x 18,676 x 1.044 = 38,996
    assert best["range"]["qps"][0] <= best["instance_qps"] <= best["range"]["qps"][1]
    lo, hi = best["annual_savings_range"]
    assert lo <= best["annual_savings_usd"] <= hi
    text = summary_markdown(stages.read_typed(tmp_path, "06_cost_report"), stages.read_typed(tmp_path, "04_validate"),
                            results.ExportResult.model_construct(model="zoo:resnet50"))
    assert "per instance of 2" in text and f"{two_gpus:,.0f} queries/s" in text
    assert "against the one-device worker pool 1.044" in text
