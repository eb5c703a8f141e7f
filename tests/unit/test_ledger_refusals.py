"""What the ledger refuses, and how it says so: a manifest edited to name another device, run ids that are not
plain names, artifact paths outside the run folder, symbolic links; a refused folder named with a trailing slash;
ledgers that are missing, folders or not SQLite; dates that are not dates; LIKE wildcards in a name filter."""

import hashlib
import json
import shutil
import sqlite3

import pytest

from scaleproof import ledger
from scaleproof.cli import main
from scaleproof.errors import ParamsError
from tests.ledger_runs import CPU_A, STORED, planted_run

H100_X2 = STORED / "gpu-2026-11-26e" / "h100-x2-priced"
NO_RESULTS = STORED / "cpu-calibration-2026-11-25" / "digits-cnn"  # a copy without stage results: refused


def edit_manifest(run, **changes):
    manifest = json.loads((run / "manifest.json").read_text())
    for k, v in changes.items():
        manifest[k] = v
    (run / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def test_a_manifest_edited_to_name_another_device_is_refused(tmp_path, capsys):
    run = tmp_path / "h200-claimed"
    shutil.copytree(H100_X2, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["environment"]["gpu"]["name"] = "NVIDIA H200"
    edit_manifest(run, run_id="h200-claimed", created="2026-12-01T00:00:00+00:00", environment=manifest["environment"])
    db = tmp_path / "l.sqlite"
    assert main(["ledger", "add", str(run), "--ledger", str(db)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "the manifest says 2 x NVIDIA H200" in out and "2 x NVIDIA H100 80GB HBM3" in out
    assert "2 x NVIDIA H200" not in out.split("REFUSED")[0]  # never listed as added


def test_the_device_comes_from_the_benchmarks_hardware(tmp_path):
    db = tmp_path / "l.sqlite"
    out = ledger.add_runs([H100_X2], db)
    assert (out.added[0].device_type, out.added[0].device_count) == ("NVIDIA H100 80GB HBM3", 2)


@pytest.mark.parametrize("run_id", ["x' OR '1'='1\n../../etc", "../up", "a b", ""])
def test_a_run_id_that_is_not_a_plain_name_is_refused(tmp_path, run_id):
    run = planted_run(tmp_path / "r", run_id)
    out = ledger.add_runs([run], tmp_path / "l.sqlite")
    assert not out.added and "is not a plain name" in out.refused[0][1][0]
    from scaleproof.ledger.mlflow_export import run_id_filter

    with pytest.raises(ParamsError, match="not a plain name"):
        run_id_filter(run_id)
    assert run_id_filter("CPU-A.2_b") == "tags.`scaleproof.run_id` = 'CPU-A.2_b'"


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_artifact_paths_outside_the_run_folder_are_refused(tmp_path, where):
    outside = tmp_path / "outside.txt"
    outside.write_text("not the run's\n")
    run = planted_run(tmp_path / "r", "CPU-A-outside")
    rel = str(outside) if where == "absolute" else "../outside.txt"
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["artifacts"][rel] = {"sha256": hashlib.sha256(outside.read_bytes()).hexdigest(), "bytes": 14}
    (run / "manifest.json").write_text(json.dumps(manifest))
    out = ledger.add_runs([run], tmp_path / "l.sqlite")
    assert not out.added
    assert any(p.startswith(f"{rel}: the manifest lists a path outside the run folder") for p in out.refused[0][1])


def test_a_symbolic_link_in_the_run_folder_is_refused(tmp_path):
    run = planted_run(tmp_path / "r", "CPU-A-link")
    (run / "notes.txt").symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "elsewhere.txt").write_text("x\n")
    out = ledger.add_runs([run], tmp_path / "l.sqlite")
    assert not out.added and "notes.txt: a symbolic link" in out.refused[0][1][0]


@pytest.mark.parametrize("slash", ["", "/"])
def test_a_refused_run_named_outright_exits_1_with_or_without_a_trailing_slash(tmp_path, capsys, slash):
    db = tmp_path / "l.sqlite"
    assert main(["ledger", "add", str(CPU_A), str(NO_RESULTS) + slash, "--ledger", str(db)]) == 1
    assert "REFUSED" in capsys.readouterr().out
    assert main(["ledger", "add", str(CPU_A) + slash, "--ledger", str(db)]) == 0


@pytest.fixture
def one_run(tmp_path):
    db = tmp_path / "l.sqlite"
    ledger.add_runs([CPU_A], db)
    return db


@pytest.mark.parametrize("action", [["list"], ["choose"], ["trend"], ["compare", "a", "b"]])
def test_read_only_commands_on_a_missing_ledger_fail_without_creating_it(tmp_path, capsys, action):
    db = tmp_path / "none" / "l.sqlite"
    assert main(["ledger", *action, "--ledger", str(db)]) == 2
    assert "no ledger at" in capsys.readouterr().err and not db.exists() and not db.parent.exists()


def test_a_folder_or_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path, capsys):
    assert main(["ledger", "list", "--ledger", str(tmp_path)]) == 2
    assert "is a folder: name the ledger's file" in capsys.readouterr().err
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database, just text that is long enough to look like a header of something\n" * 20)
    for action in (["list"], ["add", str(CPU_A)]):
        assert main(["ledger", *action, "--ledger", str(junk)]) == 2
        assert "file is not a database" in capsys.readouterr().err
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ParamsError, match="not a ledger of schema"):
        ledger.list_runs(other)


def test_read_only_commands_leave_the_ledger_file_unchanged(one_run):
    before = one_run.read_bytes()
    ledger.list_runs(one_run)
    ledger.choice(ledger.list_runs(one_run))
    assert one_run.read_bytes() == before


@pytest.mark.parametrize("option", [["--until", "2026-11-3"], ["--since", "yesterday"], ["--since", "2026-02-30"]])
def test_dates_that_are_not_iso_dates_are_refused(one_run, capsys, option):
    assert main(["ledger", "list", "--ledger", str(one_run), *option]) == 2
    assert f"{option[0]} '{option[1]}' is not a date: write it as YYYY-MM-DD" in capsys.readouterr().err


def test_a_model_filter_matches_its_characters_not_like_wildcards(one_run):
    # CPU-A's model is tests.user_models:tiny_unless_marked_node: "s_u" as a LIKE pattern would match its "s.u"
    assert ledger.list_runs(one_run, model="s_u") == [] and ledger.list_runs(one_run, model="%") == []
    assert [r["run_id"] for r in ledger.list_runs(one_run, model="user_models")] == ["CPU-A"]


def test_report_checks_its_run_ids_before_running_the_notebook(one_run, tmp_path):
    out = tmp_path / "r.html"
    with pytest.raises(ParamsError, match="run 'nope' is not in the ledger"):
        ledger.render_report(out, one_run, before_run="nope", after_run="CPU-A")
    with pytest.raises(ParamsError, match="no ledger at"):
        ledger.render_report(out, tmp_path / "missing.sqlite")
    assert not out.exists() and not (tmp_path / "missing.sqlite").exists()
