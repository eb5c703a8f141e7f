"""verify and reproduce on a real published run (the smoke profile through papermill)."""

import json
import shutil
from pathlib import Path

import pytest

from scaleproof.audit import reproduce_run, resolve, verify_run
from scaleproof.cli import main
from tests.offline_browser import offline_page

pytestmark = pytest.mark.slow


@pytest.fixture
def copy_of(published, tmp_path):
    return Path(shutil.copytree(published, tmp_path / "run"))


def test_a_fresh_run_verifies(published, capsys):
    problems, checked = verify_run(published)
    assert problems == [] and checked["claims"] >= 10 and checked["artifacts"] >= 40
    assert main(["verify", str(published)]) == 0 and "OK:" in capsys.readouterr().out


def flip_one_byte(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("victim", ["build/engines/*/onnxruntime-int8.onnx", "benchmark/benchmark.json",
                                    "benchmark/loadgen/onnxruntime-int8/offline/mlperf_log_detail.txt"])
def test_one_changed_byte_in_any_artifact_fails_verify(copy_of, victim, capsys):
    path = next(copy_of.glob(victim))
    flip_one_byte(path)
    problems, _ = verify_run(copy_of)
    assert any(p.startswith(path.relative_to(copy_of).as_posix() + ": changed") for p in problems)
    assert main(["verify", str(copy_of)]) == 1 and "changed" in capsys.readouterr().out


def test_an_edited_claim_in_the_report_fails_verify_and_is_named(copy_of):
    cost = json.loads((copy_of / "cost_report" / "cost_report.json").read_text())
    claim = next(c for c in cost["claims"] if c["id"] == "onnxruntime-int8.qps")
    report = copy_of / "report.html"
    text = report.read_text()
    qps = claim["text"].split(" sustains ")[1].split(" ")[0]
    assert qps in text
    report.write_text(text.replace(f"sustains {qps}", "sustains 999,999"))
    problems, _ = verify_run(copy_of)
    assert any("onnxruntime-int8.qps" in p and "not in report.html" in p for p in problems)


def test_a_claim_that_disagrees_with_its_source_fails_verify(copy_of):
    bench_path = copy_of / "benchmark" / "benchmark.json"
    bench = json.loads(bench_path.read_text())
    cost = json.loads((copy_of / "cost_report" / "cost_report.json").read_text())
    claim = next(c for c in cost["claims"] if c["id"] == "torch-fp32.qps")
    assert resolve(bench, claim["key"]) == claim["value"]
    bench["engines"][0]["capacity"]["qps"] *= 2
    bench_path.write_text(json.dumps(bench))
    problems, _ = verify_run(copy_of)
    assert any(p.startswith("claim torch-fp32.qps: the report says") for p in problems)
    assert any(p.startswith("benchmark/benchmark.json: changed") for p in problems)


def test_an_added_file_fails_verify(copy_of):
    (copy_of / "export" / "extra.onnx").write_bytes(b"not part of the run")
    problems, _ = verify_run(copy_of)
    assert problems == ["export/extra.onnx: not in the manifest (added after the run)"]


def test_reproduce_matches_every_non_timing_result(published, tmp_path):
    new_run, checks = reproduce_run(published, outputs=tmp_path, timing_tolerance=0.9)
    exact = [c for c in checks if c.kind == "exact"]
    assert exact and all(c.ok for c in exact), [c for c in exact if not c.ok]
    assert {c.check for c in exact} >= {"export.onnx_sha256", "calibrate.int8_onnx_sha256"}
    assert verify_run(new_run)[0] == []


def test_reproduce_with_another_calibration_seed_reports_the_difference(published, tmp_path, capsys, monkeypatch):
    """`reproduce --set seed=7`: the override reaches the reproduction's parameters, and compare names what the new
    seed changed. The reproduction is the published run with 01_export and 02_calibrate run again under the
    parameters reproduce passes (a whole second chain takes a minute; the full one is
    test_reproduce_matches_every_non_timing_result)."""
    from scaleproof import pipeline
    from scaleproof.pipeline import RunOutcome
    from scaleproof.stages import calibrate, export

    given = {}

    def recalibrated(params, run_id, outputs, progress):
        run = Path(shutil.copytree(published, Path(outputs) / run_id))
        given["params"] = params
        export.run(params.with_(run_dir=str(run)))
        calibrate.run(params.with_(run_dir=str(run)))
        return RunOutcome("succeeded", run)

    monkeypatch.setattr(pipeline, "run_chain", recalibrated)
    code = main(["reproduce", str(published), "--outputs", str(tmp_path), "--set", "seed=7", "--quiet",
                 "--timing-tolerance", "0.9"])
    out, err = capsys.readouterr()
    assert code == 1 and given["params"].seed == 7, err
    lines = {ln.split("  ")[0].strip(): ln for ln in out.splitlines()}
    assert "MISMATCH" in lines["calibrate.calib_data_sha256"] and "MISMATCH" in lines["calibrate.int8_onnx_sha256"]
    assert lines["export.onnx_sha256"].rstrip().endswith("ok")


def test_report_renders_in_a_real_browser(published, tmp_path):
    """Headless Chromium opens report.html with no request leaving the machine: the summary table and every
    plot are present and visible."""
    with offline_page(published / "report.html", width=1300) as page:
        heading = page.get_by_text("Key results", exact=False).first
        assert heading.is_visible()
        table = page.locator("table").first
        assert table.is_visible() and table.locator("tr").count() >= 3
        assert "confirmed Server QPS" in table.inner_text()
        images = page.locator("img")
        assert images.count() >= 4
        for i in range(images.count()):
            img = images.nth(i)
            img.scroll_into_view_if_needed()
            assert img.is_visible()
            assert img.evaluate("el => el.complete && el.naturalWidth > 100 && el.naturalHeight > 100")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 50_000
