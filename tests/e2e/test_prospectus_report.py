"""`scaleproof prospectus` over two stored runs of this repository (ResNet-50 on two H100s, the sentence encoder
on a 2-core AMD EPYC), three fiscal years in CNY: the notebook executed by papermill, rendered to HTML and opened
in headless Chromium with no request leaving the machine."""

import json

import pytest

from scaleproof import paths
from scaleproof.cli import main
from tests.offline_browser import offline_page

REPO = paths.PACKAGE_DIR.parents[1]


@pytest.fixture(scope="module")
def prospectus(tmp_path_factory):
    out = tmp_path_factory.mktemp("prospectus")
    mp = pytest.MonkeyPatch()
    mp.chdir(REPO)  # the params name the run folders relative to the repository
    try:
        code = main(["prospectus", "--params", "params/prospectus-example.yaml", "--out", str(out),
                     "--set", "years=3", "--currency", "CNY"])
    finally:
        mp.undo()
    assert code == 0
    return out


def test_the_prospectus_is_written_with_its_notebook_json_workbook_and_csvs(prospectus):
    names = {p.name for p in prospectus.iterdir()}
    assert {"prospectus.html", "prospectus.ipynb", "prospectus.json", "prospectus.xlsx", "csv"} <= names
    result = json.loads((prospectus / "prospectus.json").read_text())
    assert sorted({y["fiscal_year"] for y in result["years"]}) == [2027, 2028, 2029]
    html = (prospectus / "prospectus.html").read_text()
    # every figure traced: the run files, the price rows, the rate and its date
    for m in result["models"]:
        assert m["trace"]["capacity_after"] in html and f"row {m['price']['price_id']} of data/prices.csv" in html
    assert html.count("1 USD = 7.1 CNY, dated 2026-12-07") >= 4  # under every money table and chart


def test_the_prospectus_renders_in_a_real_browser_with_no_network_request(prospectus, tmp_path):
    with offline_page(prospectus / "prospectus.html", width=1300) as page:
        assert page.get_by_text("Year by year (base case)").first.is_visible()
        years = page.locator("table").filter(has_text="gross margin").first
        assert years.is_visible() and years.locator("tbody tr").count() == 3
        assert "2029" in years.inner_text() and "¥" in years.inner_text()
        images = page.locator("img")
        assert images.count() == 2  # the before/after chart and the scenario bands
        for i in range(images.count()):
            img = images.nth(i)
            img.scroll_into_view_if_needed()
            assert img.is_visible() and img.evaluate("el => el.complete && el.naturalWidth > 600")
        page.screenshot(path=str(tmp_path / "prospectus.png"), full_page=True)
    assert (tmp_path / "prospectus.png").stat().st_size > 50_000
