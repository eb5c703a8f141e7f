"""What a prospectus refuses and what it must keep fixed: runs that changed since they were written, failed and
exploratory runs, engines whose capacity is flagged, the high case above any measured peak, revenue whose
currency moves with --currency, undated rates, owned hardware repriced after purchase, instances of unlike
machines added up, and a file list naming files the run did not write."""

import csv
import hashlib
import json
import shutil

import pytest

from scaleproof import paths
from scaleproof.cli import main
from scaleproof.cost import HOURS_PER_YEAR
from scaleproof.errors import ParamsError
from scaleproof.prospectus.figures import headline_markdown, year_table
from scaleproof.prospectus.forecast import build
from scaleproof.prospectus.money import user_rate
from scaleproof.prospectus.spec import load_spec, spec_from

REPO = paths.PACKAGE_DIR.parents[1]
GPU_RUN = "benchmarks/results/gpu-2026-11-26e/h100-x2-priced"
CPU_RUN = "benchmarks/results/cpu-transformer-2026-11-25"
WORKED = load_spec(REPO / "params" / "prospectus-worked-example.yaml").model_dump()
EXAMPLE = load_spec(REPO / "params" / "prospectus-example.yaml").model_dump()


def cpu_model(run: str) -> dict:
    return {"name": "encoder", "run": run, "daily_requests": 1e6}


def copy_run(tmp_path, src: str = CPU_RUN):
    run = tmp_path / "run"
    shutil.copytree(REPO / src, run)
    return run


def rewrite(run, name: str, change, rehash: bool) -> None:
    """Change a JSON file of a stored run; with `rehash`, record its new sha256 in the manifest as if the run had
    written it so (the status checks must then refuse it on their own)."""
    f = run / name
    doc = json.loads(f.read_text())
    change(doc)
    f.write_text(json.dumps(doc))
    if rehash:
        manifest = json.loads((run / "manifest.json").read_text())
        key = next(k for k in manifest["artifacts"] if k.endswith("/" + name))
        manifest["artifacts"][key] = {"sha256": hashlib.sha256(f.read_bytes()).hexdigest(), "bytes": f.stat().st_size}
        (run / "manifest.json").write_text(json.dumps(manifest))


def test_a_run_whose_cost_report_changed_after_it_was_written_is_refused(tmp_path):
    run = copy_run(tmp_path)

    def tenfold(doc):
        doc["engines"][2]["qps"] *= 10
        doc["engines"][2]["instance_qps"] *= 10
    rewrite(run, "cost_report.json", tenfold, rehash=False)
    with pytest.raises(ParamsError, match=r"cost_report\.json: changed"):
        build(spec_from({**WORKED, "models": [cpu_model(str(run))]}))


def test_failed_and_exploratory_runs_are_refused(tmp_path):
    run = copy_run(tmp_path)
    rewrite(run, "cost_report.json", lambda d: d.update(exploratory=True, status="exploratory: smoke"), rehash=True)
    with pytest.raises(ParamsError, match="exploratory"):
        build(spec_from({**WORKED, "models": [cpu_model(str(run))]}))
    run2 = copy_run(tmp_path / "b")
    m = json.loads((run2 / "manifest.json").read_text())
    (run2 / "manifest.json").write_text(json.dumps({**m, "status": "failed", "error": "benchmark: out of memory"}))
    with pytest.raises(ParamsError, match="status is 'failed'"):
        build(spec_from({**WORKED, "models": [cpu_model(str(run2))]}))


def test_the_margin_contribution_does_not_move_with_the_currency_it_is_shown_in():
    # revenue and the hourly price stated in CNY: shown in CNY, EUR or USD the business is the same
    got = {}
    for cur in ("CNY", "EUR", "USD"):
        r = build(spec_from({**WORKED, "currency": cur, "rate": ""}))
        got[cur] = r["years"][0]
    assert got["EUR"]["margin_contribution_pp"] == pytest.approx(got["CNY"]["margin_contribution_pp"], rel=1e-12)
    assert got["USD"]["margin_contribution_pp"] == pytest.approx(got["CNY"]["margin_contribution_pp"], rel=1e-12)
    assert got["USD"]["revenue"] == pytest.approx(got["CNY"]["revenue"] / 7.1)
    with pytest.raises(ParamsError, match="revenue_currency"):
        spec_from({k: v for k, v in WORKED.items() if k != "revenue_currency"})


def test_flagged_engines_are_refused_unless_accepted_and_their_flags_are_shown():
    plain = [{**m, "accept_flags": []} for m in EXAMPLE["models"]]
    with pytest.raises(ParamsError, match="repeats_disagree.*accept_flags"):
        build(spec_from({**EXAMPLE, "models": plain}), root=REPO)
    r = build(spec_from(EXAMPLE), root=REPO)
    before = r["models"][0]["run"]["before"]
    assert {f["rule"] for f in before["flags"]} == {"server_below_offline", "repeats_disagree", "search_open"}
    assert sorted(before["accepted_flags"]) == ["repeats_disagree", "server_below_offline"]
    text = headline_markdown(r)
    assert "repeats_disagree" in text and "server_below_offline" in text and "accepted" in text


def test_the_high_case_never_prices_a_rate_above_the_highest_valid_peak():
    r = build(spec_from(EXAMPLE), root=REPO)
    after = r["models"][0]["run"]["after"]  # torch-fp16-compile: peaks 20,769 and 21,111; lowest INVALID 22,029
    assert after["qps_range"][1] == pytest.approx(21110.67737174176)
    scale = after["instance_qps"] / after["qps"]
    assert after["instance_qps_range"][1] == pytest.approx(21110.67737174176 * scale)
    assert "highest VALID peak 21,111/s" in r["models"][0]["trace"]["high_after"]  # the trace says why
    cpu_after = r["models"][1]["run"]["after"]  # one peak search: its highest VALID target is the confirmed rate
    assert cpu_after["qps_range"][1] == pytest.approx(cpu_after["qps"])


def test_the_year_table_counts_instances_per_machine_type():
    r = build(spec_from(EXAMPLE), root=REPO)
    y = r["years"][0]
    assert set(y["instances"]) == {"aws-p5-h100 (2 x H100 80GB)", "aws-c7i-large (2 vCPU (Xeon))"}
    gpu = next(x for x in y["models"] if "ResNet" in x["model"])
    assert y["instances"]["aws-p5-h100 (2 x H100 80GB)"]["before"] == gpu["before"]["instances"]
    table = year_table(r).to_string()
    assert "aws-p5-h100 (2 x H100 80GB)" in table


def test_a_rate_needs_an_iso_date_and_an_empty_override_says_how_to_write_one():
    with pytest.raises(ParamsError, match="YYYY-MM-DD"):
        user_rate("CNY=7.2@yesterday")
    assert user_rate("CNY=7.2@2026-12-07").date == "2026-12-07"
    with pytest.raises(ParamsError, match="CURRENCY=UNITS_PER_USD@YYYY-MM-DD"):
        spec_from({**WORKED, "rate": None})
    with pytest.raises(ParamsError, match="rate: rate 'CNY=7.2@yesterday': date 'yesterday' is not a calendar date"):
        spec_from({**WORKED, "rate": "CNY=7.2@yesterday"})


def test_owned_hardware_keeps_its_purchase_price_and_only_new_purchases_and_running_costs_change():
    model = {**WORKED["models"][0], "price_per_hour": 0.0, "price_currency": "USD", "price_row": "aws-p5-h100",
             "price_mode": "owned"}
    r = build(spec_from({**WORKED, "years": 2, "price_change": -0.5, "currency": "USD", "rate": "",
                         "models": [model]}))
    base = [y for y in r["years"] if y["case"] == "base"]
    n = base[0]["models"][0]["before"]["instances"]
    assert base[1]["models"][0]["before"]["instances"] == n  # no growth: nothing new is bought
    capital, hosting, running = 30000 / 4 / HOURS_PER_YEAR, 2500 / HOURS_PER_YEAR, 0.7 * 1.3 * 0.10
    assert base[0]["opex_before"] == pytest.approx(n * 8760 * (capital + hosting + running))
    assert base[1]["opex_before"] == pytest.approx(n * 8760 * (capital + 0.5 * (hosting + running)))


def test_the_csvs_carry_the_rate_and_its_date(tmp_path):
    out = tmp_path / "out"
    assert main(["prospectus", "--params", str(REPO / "params" / "prospectus-worked-example.yaml"), "--out",
                 str(out), "--no-html"]) == 0
    for f in (out / "csv").iterdir():
        rows = list(csv.reader(f.open(newline="")))
        assert "1 USD = 7.1 CNY, dated 2026-12-07" in rows[-1][0], f.name


def test_the_last_line_names_the_files_this_run_wrote_not_what_the_folder_held(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "prospectus.html").write_text("an earlier prospectus")
    assert main(["prospectus", "--params", str(REPO / "params" / "prospectus-worked-example.yaml"), "--out",
                 str(out), "--no-html"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "prospectus.json" in first and "prospectus.xlsx" in first and "csv/years.csv" in first
    assert "prospectus.html" not in first.split(":", 1)[1].split(";")[0]
    assert "not rewritten" in first
