"""The ledger report: notebooks/09_ledger executed by papermill over a ledger of the stored runs, rendered to
offline HTML, and opened in headless Chromium with no request leaving the machine."""

import json

import pytest

from scaleproof import ledger
from scaleproof.cli import main
from tests.ledger_runs import STORED
from tests.offline_browser import offline_page


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ledger-report")
    db = tmp / "ledger.sqlite"
    ledger.add_runs([STORED], db)
    code = main(["ledger", "report", "--ledger", str(db), "--out", str(tmp / "report" / "ledger_report.html"),
                 "--models", "resnet50", "--devices", "H100", "H200", "--before", "h100-x2-priced",
                 "--after", "x2-priced"])
    assert code == 0
    return tmp / "report"


def test_the_report_names_the_choice_the_before_after_and_the_runs(rendered):
    html = (rendered / "ledger_report.html").read_text()
    assert "Cheapest device type per model at the SLA" in html and "a tie between" in html
    assert "x2-priced" in html and "h100-profile-b" in html and "NVIDIA H200" in html
    assert "vit-h100" not in html  # filtered out: another model
    summary = json.loads((rendered / "ledger_report.json").read_text())
    assert {r["run_id"] for r in summary["runs"]} >= {"x2-priced", "h100-x2-priced", "h100x2-gcpaused"}
    # one choice per profile: the multi-gpu profile's run is not compared with the h100 profile's
    choices = {c["profile"]: c for c in summary["choice"]}
    assert set(choices) == {"params/h100.yaml", "params/multi-gpu.yaml"}
    resnet = choices["params/h100.yaml"]
    assert resnet["model"] == "zoo:resnet50" and resnet["tie"] and "aws-p5-h100" in resnet["words"]


def test_the_ledger_report_renders_offline_in_a_real_browser(rendered, tmp_path):
    with offline_page(rendered / "ledger_report.html", width=1400) as page:
        assert page.get_by_text("Cheapest device type per model", exact=False).first.is_visible()
        runs = page.locator("table").first
        assert runs.is_visible() and runs.locator("tbody tr").count() >= 8 and "USD per 1M" in runs.inner_text()
        before_after = page.locator("table").nth(1)
        assert "h100-x2-priced" in before_after.inner_text() and "x2-priced" in before_after.inner_text()
        images = page.locator("img")
        assert images.count() == 1  # the three trends in one figure
        images.first.scroll_into_view_if_needed()
        assert images.first.evaluate("el => el.complete && el.naturalWidth > 600 && el.naturalHeight > 200")
        page.screenshot(path=str(tmp_path / "ledger.png"), full_page=True)
    assert (tmp_path / "ledger.png").stat().st_size > 50_000
