"""One store object for a folder of runs, local or at an fsspec URL: the same calls do the same thing."""

import uuid

import pytest

from scaleproof.store import Store, is_url


def stores(tmp_path):
    return [Store(tmp_path / "local"), Store(f"memory://runs-{uuid.uuid4().hex}"), Store(f"file://{tmp_path}/fileurl")]


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["local path", "memory://", "file://"])
def test_a_run_folder_goes_in_and_comes_back_the_same(tmp_path, kind):
    store = stores(tmp_path)[kind]
    run = tmp_path / "made" / "run-1"
    (run / "benchmark").mkdir(parents=True)
    (run / "manifest.json").write_text('{"status": "succeeded"}')
    (run / "benchmark" / "benchmark.json").write_text("{}")
    assert not store.exists("runs/run-1")
    store.put(run, "runs/run-1")
    assert store.exists("runs/run-1") and store.read_text("runs/run-1/manifest.json") == '{"status": "succeeded"}'
    back = tmp_path / "back" / "run-1"
    store.get("runs/run-1", back)
    assert (back / "benchmark" / "benchmark.json").read_text() == "{}"
    store.get("runs/none", tmp_path / "nothing")  # a folder the store lacks: nothing, no error
    assert not (tmp_path / "nothing").exists()
    (run / "logs").mkdir()
    (run / "logs" / "run.log").write_text("log")
    store.put(run, "runs/run-1")  # again, onto the existing folder: merged, never nested
    store.get("runs/run-1", back)  # into the existing local copy: merged too
    assert not store.exists("runs/run-1/run-1") and not (back / "run-1").exists()
    assert (back / "logs" / "run.log").read_text() == "log" and (back / "manifest.json").is_file()
    store.get("runs/run-1/manifest.json", tmp_path / "new" / "m.json")  # one file, into a folder not yet made
    assert (tmp_path / "new" / "m.json").read_text() == '{"status": "succeeded"}'


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["local path", "memory://", "file://"])
def test_small_files_are_written_read_and_removed_by_pattern(tmp_path, kind):
    store = stores(tmp_path)[kind]
    store.write_text(".probe-ab", "ab")
    store.write_text(".probe-ab-T4", "ab")
    store.write_text("fleet/fleet.json", "{}")
    store.write_text(".probe-ab-dir/keep", "k")  # a folder that matches the pattern is left
    assert store.read_text(".probe-ab") == "ab" and store.child("fleet").read_text("fleet.json") == "{}"
    store.remove(".probe-ab*")
    assert not store.exists(".probe-ab") and not store.exists(".probe-ab-T4") and store.exists("fleet/fleet.json")
    assert store.read_text(".probe-ab-dir/keep") == "k"


def test_a_local_store_copies_nothing_onto_itself_and_names_its_kind(tmp_path):
    store = Store(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.txt").write_text("x")
    store.put(tmp_path / "runs", "runs")  # already there
    assert (tmp_path / "runs" / "a.txt").read_text() == "x"
    assert is_url("s3://bucket/runs") and not is_url("/data/runs") and not Store(tmp_path).is_url
    assert str(Store("memory://x/y").child("f1")) == "memory://x/y/f1"


def test_a_run_to_a_url_that_cannot_be_reached_is_refused_before_any_work(capsys):
    from scaleproof import cli
    from tests import ROOT

    code = cli.main(["run", "--params", str(ROOT / "params" / "smoke.yaml"), "--outputs", "nosuchscheme://bucket/runs"])
    assert code == 2 and "--outputs nosuchscheme://bucket/runs: cannot reach it" in capsys.readouterr().err
