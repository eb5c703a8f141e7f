import math

import pytest

from scaleproof.cli import main
from scaleproof.cost import (
    Traffic,
    compare,
    cost_per_million,
    fleet_cost,
    instances_needed,
    load_prices,
    pick_price,
)
from scaleproof.errors import ParamsError


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
