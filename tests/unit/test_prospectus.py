"""The prospectus model: the worked example rebuilt from params and checked against hand arithmetic, the fleet
policies' bounds over several daily profiles, dated currency conversion, price modes, and the workbook and
CSVs holding the JSON's values."""

import csv
import json
import math
import random
import re
import shutil

import pytest

from scaleproof import paths, pipeline
from scaleproof.cli import main
from scaleproof.cost import load_prices, pick_price
from scaleproof.errors import ParamsError
from scaleproof.prospectus import load_profile
from scaleproof.prospectus.figures import headline_markdown
from scaleproof.prospectus.forecast import build
from scaleproof.prospectus.load_profile import FleetPolicy, price_fleet, profile
from scaleproof.prospectus.money import load_rates, pick_rate, to_usd
from scaleproof.prospectus.price_modes import hourly_price, load_modes
from scaleproof.prospectus.spec import load_spec, spec_from

REPO = paths.PACKAGE_DIR.parents[1]
EXAMPLE = REPO / "params" / "prospectus-example.yaml"
GPU_RUN = "benchmarks/results/gpu-2026-11-26e/h100-x2-priced"
CPU_RUN = "benchmarks/results/cpu-transformer-2026-11-25"

# The investor table: 600 -> 2,300 QPS per card, ¥0.018 -> ¥0.0065 per request, from this params file.
WORKED = load_spec(REPO / "params" / "prospectus-worked-example.yaml").model_dump()


def test_the_worked_example_is_rebuilt_from_params_to_the_fen():
    r = build(spec_from(WORKED))
    fleets = r["models"][0]["today"]["fleets"]["peak-sized"]
    before, after = fleets["before"], fleets["after"]
    # 518,400 requests/day = 6 requests/s x 900 candidates scored = 5,400 inferences/s, all day (flat profile)
    # before: 5,400 / (600 x 0.7 = 420) = 12.9 -> 13 cards + 1 spare = 14; 14 x ¥28 x 24 h = ¥9,408 a day
    assert before["peak_instances"] == 14 and before["cost_per_day"] == pytest.approx(9408)
    assert before["fleet_per_request"] == pytest.approx(9408 / 518_400)  # ¥0.018148
    # after: 5,400 / (2,300 x 0.7 = 1,610) = 3.4 -> 4 + 1 = 5 cards; 5 x 28 x 24 = ¥3,360 a day
    assert after["peak_instances"] == 5 and after["fleet_per_request"] == pytest.approx(3360 / 518_400)  # ¥0.0064815
    # the floor: ¥28 / (600 x 0.7 x 3,600 s) x 900 inferences = ¥0.016667 a request; after ¥0.0043478
    assert before["floor_per_request"] == pytest.approx(28 / (600 * 0.7 * 3600) * 900)
    assert after["floor_per_request"] == pytest.approx(28 / (2300 * 0.7 * 3600) * 900)
    text = headline_markdown(r)
    assert "¥0.018 (1.8 fen) → **¥0.0065 (0.65 fen) per request**" in text
    assert "600 → 2,300 inferences/s per instance" in text
    assert "1 USD = 7.1 CNY, dated 2026-12-07" in text
    # a year: ¥9,408 x 365 = ¥3,433,920 -> ¥1,226,400; revenue ¥0.05 x 518,400 x 365 = ¥9,460,800, 30% other cost
    y = r["years"][1]  # the base case's only year
    assert y["case"] == "base" and y["opex_before"] == pytest.approx(3_433_920)
    assert y["opex_after"] == pytest.approx(1_226_400) and y["revenue"] == pytest.approx(9_460_800)
    assert y["gross_margin_before"] == pytest.approx((9_460_800 * 0.7 - 3_433_920) / 9_460_800)  # 33.70%
    assert y["gross_margin_after"] == pytest.approx((9_460_800 * 0.7 - 1_226_400) / 9_460_800)  # 57.04%
    assert y["margin_contribution_pp"] == pytest.approx(2_207_520 / 9_460_800 * 100)  # +23.33 pp
    assert r["models"][0]["run"]["before"]["memory_gb"] == 7.2 and r["models"][0]["run"]["after"]["memory_gb"] == 4.1


def profiles() -> dict[str, list[float]]:
    rng = random.Random(7)
    spike = [1.0] * 24
    spike[20] = 12.0
    night = [0.0 if h < 6 else 1.0 for h in range(24)]
    return {"default": profile("default"), "flat": profile("flat"), "spike": load_profile.normalized(spike, "s"),
            "dark nights": load_profile.normalized(night, "n"),
            **{f"random {i}": load_profile.normalized([rng.uniform(0.05, 3) for _ in range(24)], "r") for i in range(6)}}


def test_autoscaled_never_costs_more_than_peak_sized_and_no_fleet_beats_the_floor():
    rows = load_prices()
    modes = load_modes()
    h100 = next(r for r in rows if r.id == "aws-p5-h100")
    prices = [hourly_price(h100, m, modes) for m in ("on-demand", "reserved-1y", "spot", "owned")]
    saved = 0
    for name, shape in profiles().items():
        for capacity in (37.0, 920.0, 18_676.0):
            for daily in (2e6, 3e8, 4e9):
                for lead, minimum, spares in ((0, 0, 0), (0.25, 1, 1), (2, 3, 2), (5, 0, 1)):
                    for price in prices:
                        args = dict(target_utilization=0.7, redundancy=spares, min_instances=minimum)
                        peak = price_fleet(daily, shape, capacity, price, FleetPolicy("peak-sized", **args))
                        auto = price_fleet(daily, shape, capacity, price,
                                           FleetPolicy("autoscaled", lead_time_h=lead, **args))
                        case = f"{name}, {capacity} inf/s, {daily:g}/day, lead {lead}, {price.mode}"
                        assert auto["usd_per_day"] <= peak["usd_per_day"] * (1 + 1e-12), case
                        for f in (peak, auto):
                            assert f["fleet_usd_per_1m"] >= f["floor_usd_per_1m"] * (1 - 1e-12), case
                        saved += auto["usd_per_day"] < peak["usd_per_day"]
    assert saved > 100  # autoscaling does save on the uneven days, not only tie


def test_reserved_hours_are_paid_all_day_so_autoscaling_saves_nothing_on_them():
    h100 = next(r for r in load_prices() if r.id == "aws-p5-h100")
    modes = load_modes()
    shape = profile("default")
    out = {}
    for mode in ("on-demand", "reserved-3y"):
        price = hourly_price(h100, mode, modes)
        out[mode] = [price_fleet(3e8, shape, 900.0, price, FleetPolicy(p, 0.7, 1, 1, 1.0))["usd_per_day"]
                     for p in ("peak-sized", "autoscaled")]
    assert out["on-demand"][1] < out["on-demand"][0]
    assert out["reserved-3y"][1] == pytest.approx(out["reserved-3y"][0])
    owned = hourly_price(h100, "owned", modes)  # 30,000 USD over 4 y + 2,500 USD/y; 0.7 kW x PUE 1.3 x 0.10 USD/kWh
    assert owned.held_usd_per_hour == pytest.approx(30_000 / 4 / 8760 + 2_500 / 8760)
    assert owned.running_usd_per_hour == pytest.approx(0.7 * 1.3 * 0.10)
    spot = hourly_price(h100, "spot", modes)
    assert spot.running_usd_per_hour == pytest.approx(6.88 * 0.35 * 1.15) and "interruption" in spot.how


def test_a_currency_converts_at_its_dated_rate_and_says_so(tmp_path):
    table = tmp_path / "rates.csv"
    table.write_text("currency,units_per_usd,date,source,status\nEUR,0.92,2026-12-04,"
                     "https://www.ecb.europa.eu/stats/eurofxref/,read from the page\n")
    rate = pick_rate("eur", table)
    assert (rate.units_per_usd, rate.date) == (0.92, "2026-12-04") and to_usd(92, "EUR", rate) == pytest.approx(100)
    in_usd = {"revenue_per_request": 0.05 / 7.10, "revenue_currency": "USD"}
    usd = build(spec_from({**WORKED, **in_usd, "currency": "USD", "rate": "", "models": [
        {**WORKED["models"][0], "price_per_hour": 28 / 7.10, "price_currency": "USD"}]}))
    eur = build(spec_from({**WORKED, **in_usd, "currency": "EUR", "rate": "", "rate_table": str(table), "models": [
        {**WORKED["models"][0], "price_per_hour": 28 / 7.10, "price_currency": "USD"}]}))
    for a, b in zip(usd["years"], eur["years"], strict=True):
        assert b["opex_after"] == pytest.approx(a["opex_after"] * 0.92) and b["instances"] == a["instances"]
    assert "1 USD = 0.92 EUR, dated 2026-12-04; source https://www.ecb.europa.eu" in eur["rate_words"]
    # the shipped table says its figures were not read from a page; every row dated and sourced
    shipped = load_rates()
    assert {"USD", "CNY", "EUR"} <= set(shipped)
    assert all("not read" in r.status for c, r in shipped.items() if c != "USD")
    assert all(r.source.startswith("https://") for c, r in shipped.items() if c != "USD")
    with pytest.raises(ParamsError, match="CURRENCY=UNITS_PER_USD@DATE"):
        pick_rate("CNY", override="CNY=7.2")
    with pytest.raises(ParamsError, match="no exchange rate for 'JPY'"):
        pick_rate("JPY")
    with pytest.raises(ParamsError, match="cannot be converted"):
        to_usd(1, "JPY", rate)


def test_every_price_row_cites_a_page_or_a_file_of_this_repository_and_says_whether_it_was_read():
    with open(paths.data_dir() / "prices.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"T4", "L4", "A10G", "A100 80GB", "H100 80GB", "H200 141GB"} <= {r["accelerator"] for r in rows}
    assert any("vCPU" in r["accelerator"] for r in rows)
    prices = load_prices()  # 'auto' takes the first row whose `matches` is in the device slug: A100 before A10
    assert [pick_price(prices, "auto", s).id for s in ("a100-sxm4-80gb", "a10", "a10g", "h200", "h100-80gb-hbm3")] == \
        ["azure-nc-a100-v4", "aws-g5-xlarge", "aws-g5-xlarge", "aws-p5e-h200", "aws-p5-h100"]
    sources = (paths.data_dir() / "price_sources.md").read_text()
    for r in rows:
        cited = re.findall(r"(data/[\w./-]+?)(?:#([\w-]+))?\)", r["source"])
        assert cited and all((REPO / file).is_file() for file, _ in cited), r["id"]
        assert all(f'id="{anchor}"' in sources for _, anchor in cited if anchor), r["id"]
        assert r["page"].startswith("https://") and "not read" in r["source"] and r["confidence"]
    for m in load_modes():
        assert "not read from a page" in m["source"] and m["confidence"] == "unverified assumption"


def test_a_run_is_named_by_its_folder_or_by_its_id_under_runs_dir(tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(REPO / CPU_RUN, runs / "encoder-int8")
    model = {"name": "encoder", "run": "encoder-int8", "daily_requests": 1e6}
    r = build(spec_from({**WORKED, "runs_dir": "runs", "models": [model]}), root=tmp_path)
    assert r["models"][0]["run"]["path"] == "runs/encoder-int8"
    assert r["models"][0]["trace"]["capacity_after"] == "runs/encoder-int8/cost_report.json engines[2].qps"
    with pytest.raises(ParamsError, match="neither a folder nor a run id"):
        build(spec_from({**WORKED, "models": [{**model, "run": "nope"}]}), root=tmp_path)


def test_params_are_checked_by_name(tmp_path):
    with pytest.raises(ParamsError, match="revnue"):
        spec_from({**WORKED, "revnue": 1})
    with pytest.raises(ParamsError, match="either run .* or capacity"):
        spec_from({**WORKED, "models": [{"name": "x", "daily_requests": 1}]})
    with pytest.raises(ParamsError, match="does not exist"):
        build(spec_from({**WORKED, "models": [{"name": "x", "daily_requests": 1, "run": str(tmp_path / "nope")}]}))
    with pytest.raises(ParamsError, match="24 non-negative hourly figures"):
        (tmp_path / "p.csv").write_text("hour,requests\n" + "".join(f"{h},5\n" for h in range(23)))
        profile(str(tmp_path / "p.csv"))


@pytest.fixture(scope="module")
def example(tmp_path_factory, request):
    out = tmp_path_factory.mktemp("prospectus")
    mp = pytest.MonkeyPatch()
    mp.chdir(REPO)
    request.addfinalizer(mp.undo)
    assert main(["prospectus", "--params", str(EXAMPLE), "--out", str(out), "--no-html"]) == 0
    return out, json.loads((out / "prospectus.json").read_text())


def test_the_workbook_and_the_csvs_hold_the_json_values(example):
    from openpyxl import load_workbook

    out, r = example
    wb = load_workbook(out / "prospectus.xlsx")
    assert {"Inputs", "Prices", "Models", "Years", "Years by model", "Day by hour"} <= set(wb.sheetnames)
    years = list(wb["Years"].iter_rows(values_only=True))
    head = years[0]
    data = [dict(zip(head, row, strict=True)) for row in years[1:] if row[0] is not None and isinstance(row[0], int)]
    assert len(data) == len(r["years"]) == 9  # 3 years x low/base/high
    for row, y in zip(data, r["years"], strict=True):
        for k in head:  # Excel keeps 15 significant digits, so a cell equals the JSON's float to that precision
            if k.startswith("instances_"):  # counted per machine type: "instances_before aws-p5-h100 (...)"
                side, kind = k.removeprefix("instances_").split(" ", 1)
                assert row[k] == y["instances"][kind][side], (k, y["case"])
                continue
            assert row[k] == (pytest.approx(y[k], rel=1e-14) if isinstance(y[k], float) else y[k]), (k, y["case"])
    models = [dict(zip(list(wb["Models"].iter_rows(values_only=True))[0], row, strict=True))
              for row in list(wb["Models"].iter_rows(values_only=True))[1:] if row[1] in ("peak-sized", "autoscaled")]
    for row in models:
        m = next(m for m in r["models"] if m["name"] == row["model"])
        f = m["today"]["fleets"][row["policy"]][row["side"]]
        assert row["peak_instances"] == f["peak_instances"]
        assert (row["fleet_per_1m"], row["floor_per_1m"]) == pytest.approx((f["fleet_per_1m"], f["floor_per_1m"]), rel=1e-14)
        assert row["capacity_source"].startswith((GPU_RUN, CPU_RUN))
    for ws in wb.worksheets:  # the rate and its date under every table
        assert "dated 2026-12-07" in [c for c in ws.iter_rows(values_only=True)][-1][0]
    with open(out / "csv" / "years.csv", newline="") as f:
        rows = [x for x in csv.DictReader(f) if not x["fiscal_year"].startswith("#")]  # the rate is the last line
    assert [float(x["opex_after"]) for x in rows] == [y["opex_after"] for y in r["years"]]


def test_a_prospectus_over_two_stored_runs_sums_their_opex_and_traces_each_figure(example):
    _, r = example
    gpu, cpu = r["models"]
    assert gpu["run"]["before"]["engine"] == "torch-fp32" and gpu["run"]["after"]["engine"] == "torch-fp16-compile"
    assert cpu["run"]["after"]["engine"] == "onnxruntime-int8" and "AMD EPYC" in cpu["run"]["device"]
    assert gpu["price"]["price_id"] == "aws-p5-h100" and gpu["run"]["accelerators_per_instance"] == 2
    assert gpu["price"]["usd_per_hour"] == pytest.approx(2 * 6.88)  # an instance of two H100s
    base = [y for y in r["years"] if y["case"] == "base"]
    assert [y["fiscal_year"] for y in base] == [2027, 2028, 2029] and r["currency"] == "CNY"
    for y in base:
        assert y["opex_after"] == pytest.approx(sum(x["after"]["opex"] for x in y["models"]))
        assert y["opex_after"] < y["opex_before"] and y["margin_contribution_pp"] > 0
    assert gpu["trace"]["capacity_after"] == f"{GPU_RUN}/cost_report.json engines[1].qps"
    assert "row aws-p5-h100 of data/prices.csv" in gpu["trace"]["price"] and "CNY" in gpu["trace"]["rate"]
    # the headline is what the fleet costs over what it serves, never under the unit floor
    for m in r["models"]:
        for sides in m["today"]["fleets"].values():
            for f in sides.values():
                assert f["fleet_per_1m"] >= f["floor_per_1m"] and math.isclose(
                    f["fleet_per_1m"], f["cost_per_day"] / m["today"]["daily_inferences"] * 1e6)


def test_scaleproof_runs_last_lines_give_the_fleet_cost_per_1m(tmp_path):
    run = tmp_path / "run"
    (run / "cost_report").mkdir(parents=True)
    shutil.copy(REPO / CPU_RUN / "cost_report.json", run / "cost_report" / "cost_report.json")
    shutil.copy(REPO / CPU_RUN / "manifest.json", run / "manifest.json")
    text, priced = pipeline.headline(run)
    best = json.loads((run / "cost_report" / "cost_report.json").read_text())["engines"][2]
    assert priced == 3 and f"fleet cost per 1M {best['fleet_usd_per_1m']:.4g} USD (3 instances" in text
    assert f"floor {best['usd_per_1m']:.4g} USD per 1M inferences at 70% utilization" in text


def test_the_example_params_load():
    spec = load_spec(EXAMPLE)
    assert spec.currency == "CNY" and [m.run for m in spec.models] == [GPU_RUN, CPU_RUN]


def test_every_option_and_every_params_field_has_help():
    from scaleproof.cli import build_parser
    from scaleproof.prospectus.spec import describe

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["prospectus"]
    options = [a for a in sub._actions if a.dest != "help"]
    assert {a.dest for a in options} >= {"params", "out", "set", "currency", "rate", "no_html"}
    assert all(a.help and len(a.help) > 20 for a in options)
    fields = describe()
    assert all(meaning for _, _, meaning in fields) and "models[].price_mode" in {n for n, _, _ in fields}
    assert all(name in sub.epilog for name, _, _ in fields)
