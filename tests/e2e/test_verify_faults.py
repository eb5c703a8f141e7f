"""`verify` never raises: every unreadable, missing, non-UTF-8 or malformed file is one finding among the others,
and a changed manifest, disagreeing parameters, an added empty folder and a rewritten sidecar are all caught."""

import json
import shutil

import pytest

from scaleproof import cli, stages
from scaleproof.audit import verify_run
from scaleproof.errors import EngineMismatchError
from scaleproof.provenance import sha256_file
from scaleproof.stages import build

pytestmark = pytest.mark.slow


@pytest.fixture
def run(published, tmp_path):
    copy = tmp_path / published.name
    shutil.copytree(published, copy)
    return copy


def test_an_untouched_copy_verifies_with_and_without_the_manifest_hash(run):
    assert verify_run(run) == ([], verify_run(run)[1])
    assert verify_run(run, sha256_file(run / "manifest.json"))[0] == []


def test_unreadable_and_malformed_files_are_findings_not_tracebacks(run):
    (run / "report.html").write_bytes(b"\xff\xfe not utf-8")
    (run / "cost_report" / "cost_report.json").write_text("{ not json")
    (run / "validate" / "validate.json").unlink()
    problems, _ = verify_run(run)
    text = "\n".join(problems)
    assert "report.html: changed" in text and "report.html: cannot be read as UTF-8 text" in text
    assert "cost_report/cost_report.json: not valid JSON" in text and "validate/validate.json: missing" in text


def test_a_folder_without_a_readable_manifest_is_a_finding(run, tmp_path):
    (run / "manifest.json").write_bytes(b"\x00\x01")
    assert "no readable manifest.json" in verify_run(run)[0][-1]
    assert verify_run(tmp_path / "nothing-here")[0] == [f"{tmp_path / 'nothing-here'}: not a folder"]


def test_a_changed_manifest_is_caught_by_its_hash_and_by_the_parameters(run, capsys):
    printed = sha256_file(run / "manifest.json")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["params"]["seed"] = 1  # the listing of artifacts is untouched: only the parameters lie now
    (run / "manifest.json").write_text(json.dumps(manifest))
    problems, _ = verify_run(run, printed)
    assert any("sha256" in p and "printed when the run ended" in p for p in problems)
    assert any("parameters differ between manifest.json and params.yaml: seed (1 vs 0)" in p for p in problems)
    # and every stage result that records seed now disagrees with the manifest too
    assert any(p.startswith("export/export.json: made with seed=0 but manifest.json says seed=1") for p in problems)
    assert cli.main(["verify", str(run), "--manifest-sha256", printed]) == 1
    assert f"FAILED: {len(problems)} problem(s)" in capsys.readouterr().out


def test_a_stage_result_made_with_other_parameters_than_the_manifest_says_is_a_finding(run):
    result = json.loads((run / "export" / "export.json").read_text())
    assert result["made_with"]["seed"] == 0
    result["made_with"]["seed"] = 7
    (run / "export" / "export.json").write_text(json.dumps(result))
    problems, _ = verify_run(run)
    assert "export/export.json: made with seed=7 but manifest.json says seed=0" in problems


def test_an_added_empty_folder_and_a_failed_status_are_findings(run):
    (run / "benchmark" / "extra").mkdir()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="failed", error="05_benchmark failed")
    (run / "manifest.json").write_text(json.dumps(manifest))
    problems, _ = verify_run(run)
    assert "benchmark/extra/: an empty folder not made by the run (added after it)" in problems
    assert "the run's status is 'failed': 05_benchmark failed" in problems


def test_a_sidecar_rewritten_to_match_a_flipped_engine_is_refused(run):
    built = stages.read_result(run, "03_build")
    entry = next(e for e in built["engines"] if e["backend"] == "onnxruntime")
    sidecar = run / "build" / entry["sidecar"]
    meta = json.loads(sidecar.read_text())
    engine = sidecar.parent / meta["engine_file"]
    data = bytearray(engine.read_bytes())
    data[len(data) // 2] ^= 0xFF
    engine.write_bytes(bytes(data))
    meta["engine_sha256"] = sha256_file(engine)  # the sidecar now agrees with the flipped engine...
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(EngineMismatchError, match="build.json recorded"):  # ...build.json does not
        build.load_engine(run, entry)
