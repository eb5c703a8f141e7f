"""Nothing lost on a second failure, and an outputs folder that cannot be written is refused before any work."""

import json
import time

import pytest

from scaleproof import cli
from scaleproof.config import Params
from scaleproof.pipeline import run_chain
from tests import ROOT

SMOKE = ROOT / "params" / "smoke.yaml"


@pytest.mark.slow
def test_the_same_run_id_failing_twice_keeps_both_records(tmp_path, caplog):
    params = Params.from_yaml(SMOKE).with_(model="tests.crashing_models:killed", input_shape=[3, 8, 8])
    first = run_chain(params, run_id="twice", outputs=tmp_path, progress=False)
    first_manifest = (first.run_dir / "manifest.json").read_bytes()
    second = run_chain(params, run_id="twice", outputs=tmp_path, progress=False)
    assert first.run_dir == tmp_path / "failed" / "twice" and second.run_dir == tmp_path / "failed" / "twice.2"
    assert (first.run_dir / "manifest.json").read_bytes() == first_manifest, "the first record is untouched"
    assert json.loads((second.run_dir / "manifest.json").read_text())["status"] == "failed"
    assert f"kept as the log in {second.run_dir} (an earlier failure of this id is kept in {first.run_dir})" \
        in caplog.text


@pytest.mark.parametrize("where", ["a file", "under a file", "a read-only filesystem"])
def test_outputs_that_cannot_be_written_are_refused_at_once(tmp_path, capsys, where):
    (tmp_path / "f").write_text("not a folder")
    outputs = {"a file": tmp_path / "f", "under a file": tmp_path / "f" / "runs",
               "a read-only filesystem": "/proc/scaleproof-runs"}[where]
    t0 = time.monotonic()
    code = cli.main(["run", "--params", str(SMOKE), "--outputs", str(outputs), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and f"--outputs {outputs}" in err and "Traceback" not in err, err
    assert ("is a file, not a folder" if where == "a file" else "cannot be written") in err
    assert time.monotonic() - t0 < 10, "refused before the price check and any stage"
