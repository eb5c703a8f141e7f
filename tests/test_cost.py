import math

import pytest

from scaleproof.cost import cost_per_million, instances_needed, load_prices, pick_price, price_engine
from scaleproof.errors import ParamsError


def test_reference_worked_check_t4():
    # REFERENCE.md: ResNet-50 at MLPerf's 6,036 img/s on a T4 at $0.526/h is about $0.024 per 1M images.
    by_hand = 0.526 / (6036 * 3600) * 1_000_000
    assert cost_per_million(6036, 0.526, 1.0) == pytest.approx(by_hand)
    assert round(by_hand, 3) == 0.024


def test_instances_and_annual_cost():
    assert instances_needed(50_000, 1_200, 0.7) == math.ceil(50_000 / 840)
    assert instances_needed(840, 1_200, 0.7) == 1  # exactly at the planned utilization
    row = load_prices()[0]
    priced = price_engine(1_200, row, 50_000, 0.7)
    assert priced["annual_usd"] == pytest.approx(60 * row.usd_per_hour * 8760)


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
