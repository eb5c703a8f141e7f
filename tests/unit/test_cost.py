import math

import pytest

from scaleproof.cli import main
from scaleproof.config import Params
from scaleproof.cost import (
    PriceRow,
    Traffic,
    compare,
    cost_per_million,
    fleet_cost,
    instance_scaling,
    instances_needed,
    load_prices,
    pick_price,
    price_engine,
    ratio_ranges,
)
from scaleproof.errors import ParamsError
from scaleproof.results import Capacity, Scaling


def test_reference_worked_check_t4():
    # REFERENCE.md: ResNet-50 at MLPerf's 6,036 img/s on a T4 at $0.526/h is about $0.024 per 1M images.
    by_hand = 0.526 / (6036 * 3600) * 1_000_000
    assert cost_per_million(6036, 0.526, 1.0) == pytest.approx(by_hand)
    assert round(by_hand, 3) == 0.024


def test_instances_and_annual_cost():
    assert instances_needed(50_000, 1_200, 0.7) == math.ceil(50_000 / 840)
    assert instances_needed(840, 1_200, 0.7) == 1  # exactly at the planned utilization
    assert instances_needed(840, 1_200, 0.7, redundancy=1) == 2
    traffic = Traffic(daily_requests=86_400 * 10_000, peak_to_average=5.0, utilization=0.7, redundancy=1)
    assert traffic.peak_qps == 50_000
    f = fleet_cost(1_200, 0.526, traffic, growth=2.0)
    assert f["instances"] == math.ceil(100_000 / 840) + 1
    assert f["annual_usd"] == pytest.approx(f["instances"] * 0.526 * 8760)
    assert f["monthly_usd"] == pytest.approx(f["instances"] * 0.526 * 730)


def test_worked_example_speech_recognition_on_t4():
    """README's worked example: T4 at 0.526 USD/h, 1,200 -> 4,300 QPS at the P99 SLA, 50,000 QPS peak,
    70% planned utilization, N+1. By hand: ceil(50000 / 840) + 1 = 61 and ceil(50000 / 3010) + 1 = 18
    instances; 61 * 0.526 * 8760 = 281,073.36 and 18 * 0.526 * 8760 = 82,939.68 USD a year."""
    traffic = Traffic(daily_requests=50_000 * 86_400, peak_to_average=1.0, utilization=0.7, redundancy=1)
    r = compare(1_200, 4_300, 0.526, traffic)
    assert (r["baseline"]["instances"], r["engine"]["instances"]) == (61, 18)
    assert r["baseline"]["annual_usd"] == pytest.approx(281_073.36)
    assert r["engine"]["annual_usd"] == pytest.approx(82_939.68)
    assert r["annual_savings_usd"] == pytest.approx(281_073.36 - 82_939.68)
    assert r["traffic_multiple_same_budget"] == pytest.approx(4_300 / 1_200)


def test_cost_command_prints_the_worked_example(capsys):
    code = main(["cost", "--baseline-qps", "1200", "--engine-qps", "4300", "--peak-qps", "50000",
                 "--usd-per-hour", "0.526"])
    out = capsys.readouterr().out
    assert code == 0 and "61" in out and "18" in out and "198,134" in out


def test_shipped_prices_have_source_and_date_and_auto_picks_by_device():
    rows = load_prices()
    assert {"T4", "L4", "A10G", "A100 80GB", "H100 80GB"} <= {r.accelerator for r in rows}
    assert all(r.source and r.as_of for r in rows)
    assert pick_price(rows, "auto", "h100-80gb-hbm3").id == "aws-p5-h100"
    assert pick_price(rows, "auto", "cpu-intel-xeon").id == "aws-c7i-large"
    over = pick_price(rows, "aws-g4dn-xlarge", "x", override_usd_per_hour=0.4)
    assert over.usd_per_hour == 0.4 and "user override" in over.source
    with pytest.raises(ParamsError, match="not in the price table"):
        pick_price(rows, "nope", "x")
    with pytest.raises(ParamsError, match="no price row matches"):
        pick_price(rows, "auto", "tpu-v5")


def test_price_rows_without_source_are_refused(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("id,accelerator,offer,usd_per_hour,source,as_of,confidence,matches\nx,T4,o,0.5,,2026,low,t4\n")
    with pytest.raises(ParamsError, match="source and a date"):
        load_prices(f)
    f.write_text("id,accelerator\nx,T4\n")
    with pytest.raises(ParamsError, match="lacks columns"):
        load_prices(f)


def test_cost_uses_the_measured_factor_or_says_it_assumed_linear_scaling():
    bench = Scaling(engine="e", devices=["cuda:0", "cuda:1"], scaling_factor=0.9, factor_range=[0.85, 0.95])
    measured = instance_scaling(2, bench)
    assert measured["factor"] == 0.9 and measured["measured"] and measured["source"].startswith("measured")
    assert measured["factor_range"] == [0.85, 0.95]
    partly = instance_scaling(8, bench)  # measured on 2, priced for 8: the report says which part is assumed
    assert partly["factor"] == 0.9 and not partly["measured"] and partly["measured_devices"] == 2
    assert "measured over 2 of the instance's 8 accelerators" in partly["source"] and "is assumed" in partly["source"]
    assumed = instance_scaling(8, None)
    assert assumed["factor"] == 1.0 and not assumed["measured"] and "assumed linear" in assumed["source"]
    assert instance_scaling(1, None)["source"].startswith("one accelerator per instance")


def test_an_instance_of_n_accelerators_is_priced_at_n_times_the_rate_and_its_scaled_capacity():
    price = PriceRow("x", "H100", "per GPU", 2.0, "test", "2026-11", "low", "")
    traffic = Traffic(daily_requests=86400 * 1000.0, peak_to_average=1.0, utilization=1.0, redundancy=0)
    cap = Capacity(qps=100.0, p99_ms=5.0, log_dir="benchmark/loadgen/e/server-confirm-00", batching="dynamic")
    one = price_engine(cap, price, traffic, Params())
    eight = price_engine(cap, PriceRow(**{**price.__dict__, "usd_per_hour": 16.0}), traffic, Params(),
                         per_instance=8 * 0.5)
    assert one["instances"] == 10 and eight["instances"] == 3  # 1,000 QPS over 400 QPS per instance
    assert eight["qps"] == 100.0 and eight["instance_qps"] == 400.0
    assert eight["usd_per_1m"] == pytest.approx(one["usd_per_1m"] * 2)  # half the per-GPU yield: twice the cost


def test_the_factor_is_rebased_to_the_priced_capacity_capped_at_1_and_its_range_widens_the_cost_range():
    # two H100s, 2026-11-26 (benchmarks/results/gpu-2026-11-26e): the pool held 17,308 QPS on one GPU and 36,139 on two (1.044, 0.995-1.079);
    # the engine in process, whose capacity is priced, 18,676 QPS
    two_h100 = Scaling(engine="e", devices=["cuda:0", "cuda:1"], scaling_factor=1.044, factor_range=[0.995, 1.079],
                       peak_qps={"1": 17308.0, "2": 36139.4})
    rebased = instance_scaling(2, two_h100, engine_qps=18675.9)
    assert rebased["factor"] == pytest.approx(36139.4 / (2 * 18675.9))  # 0.968: never above what 2 GPUs held
    moved = 36139.4 / (2 * 18675.9) / 1.044
    assert rebased["factor_range"] == pytest.approx([0.995 * moved, 1.079 * moved])  # 0.922-1.000, under 1
    assert rebased["measured_factor"] == 1.044 and rebased["measured_factor_range"] == [0.995, 1.079]
    assert "36,139 QPS on 2 devices against 2 x 18,676 QPS" in rebased["source"]
    assert "not priced" not in rebased["source"]
    unrebased = instance_scaling(2, two_h100)  # no engine capacity to rebase to: the factor as measured, capped
    assert unrebased["factor"] == 1.0 and unrebased["factor_range"] == [0.995, 1.0]
    assert "priced at 1.000 (measured 1.044, range 0.995–1.079)" in unrebased["source"]
    above = instance_scaling(2, Scaling(engine="e", devices=["cuda:0", "cuda:1"], scaling_factor=1.06,
                                        factor_range=[1.02, 1.09]))
    assert above["factor"] == 1.0 and above["factor_range"] is None  # a range capped to one point is no range
    below = instance_scaling(2, Scaling(engine="e", devices=["cuda:0", "cuda:1"], scaling_factor=0.9,
                                        factor_range=[0.85, 0.95]))
    assert "not priced" not in below["source"]
    price = PriceRow("x", "H100", "per GPU", 2.0, "test", "2026-11", "low", "")
    traffic = Traffic(daily_requests=86_400 * 1000, peak_to_average=1.0, utilization=1.0, redundancy=0)
    cap = Capacity(qps=100.0, p99_ms=5.0, log_dir="x", batching="dynamic")  # no search spread: only the factor's
    priced = price_engine(cap, price, traffic, Params(), 2 * 0.9, (2 * 0.85, 2 * 0.95))
    assert priced["instance_qps"] == pytest.approx(180.0)
    assert priced["range"]["qps"] == pytest.approx([170.0, 190.0])
    assert priced["range"]["instances"] == [6, 6] and priced["instances"] == 6  # 1000 QPS / 170 and / 190
    assert priced["range"]["source"] == "the scaling factor's range"
    wider = price_engine(Capacity(qps=100.0, p99_ms=5.0, log_dir="x", batching="dynamic", qps_upper=120.0,
                                  range_source="spread"), price, traffic, Params(), 1.8, (1.7, 1.9))
    assert wider["range"]["qps"] == pytest.approx([170.0, 228.0])
    assert wider["range"]["instances"] == [5, 6] and wider["range"]["source"] == "spread; the scaling factor's range"


def test_the_instance_scaling_cancels_from_the_speedup_and_moves_both_engines_savings_alike():
    """The factor's range is one range for the whole instance, not one per engine: at either end the baseline and
    the engine scale together (the review's case: factor 0.9, range 0.8-1.0, no search spread)."""
    price = PriceRow("x", "H100", "per GPU", 2.0, "test", "2026-11", "low", "")
    traffic = Traffic(daily_requests=86_400 * 10_000, peak_to_average=1.0, utilization=1.0, redundancy=0)
    base, fast = (price_engine(Capacity(qps=q, p99_ms=5.0, log_dir="x", batching="dynamic"), price, traffic,
                               Params(), 2 * 0.9, (2 * 0.8, 2 * 1.0)) for q in (50.0, 1000.0))
    def annual(q):
        return fleet_cost(q, price.usd_per_hour, traffic)["annual_usd"]
    r = ratio_ranges(base, fast, annual, (2 * 0.8, 2 * 1.0))
    assert r["speedup_range"] == pytest.approx([20.0, 20.0])  # the same scale on both sides: exactly 20x
    at = [annual(50 * s) - annual(1000 * s) for s in (1.6, 2.0)]
    assert r["annual_savings_range"] == pytest.approx([min(at), max(at)])
    assert r["annual_savings_range"][0] <= base["annual_usd"] - fast["annual_usd"] <= r["annual_savings_range"][1]
