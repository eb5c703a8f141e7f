"""A stage kernel that dies in native code leaves its cause in the failed run, not only "Kernel died"."""

import json
import os
import uuid

import pytest

from scaleproof import cli
from scaleproof.config import Params
from scaleproof.errors import ScaleproofError
from scaleproof.pipeline import FAULT_LOG_ENV, run_chain
from scaleproof.store import Store
from tests import ROOT


def test_a_segfault_in_a_stage_is_quoted_in_the_manifest(tmp_path, capsys):
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml").with_(model="tests.crashing_models:segfaults",
                                                                     input_shape=[3, 8, 8])
    outcome = run_chain(params, run_id="crash", outputs=tmp_path, progress=False)
    assert not outcome.ok and outcome.run_dir == tmp_path / "failed" / "crash"
    fault = (outcome.run_dir / "logs" / "01_export.fault.log").read_text()
    assert "Fatal Python error: Segmentation fault" in fault and "crashing_models.py" in fault
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["error"].startswith("stage 01_export failed in DeadKernelError")
    for quoted in ("logs/01_export.fault.log", "Fatal Python error: Segmentation fault", "in segfaults",
                   "zoo.py"):  # the crashing frame and the scaleproof code that called it
        assert quoted in manifest["error"], quoted
    assert "about to load the native runtime" in manifest["error"]  # the cells' last stderr lines
    assert "logs/01_export.fault.log" in manifest["artifacts"]
    assert "Segmentation fault" in capsys.readouterr().out  # the FAILED line says it too
    assert FAULT_LOG_ENV not in os.environ  # the runner's own environment is restored


def test_a_kernel_killed_without_a_trace_says_so(tmp_path):
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml").with_(model="tests.crashing_models:killed",
                                                                     input_shape=[3, 8, 8])
    outcome = run_chain(params, run_id="killed", outputs=tmp_path, progress=False)
    assert not outcome.ok and "DeadKernelError" in outcome.error and "no fault trace" in outcome.error
    assert not (outcome.run_dir / "logs" / "01_export.fault.log").exists()  # empty logs are not kept


def test_a_run_at_a_url_is_made_locally_and_uploaded_there_failed_or_not(capsys):
    """`scaleproof run --outputs URL`: the run (here one whose kernel dies) lands at URL/failed/<id> with its
    manifest, and the same run id at that URL is refused before any work."""
    url = f"memory://runs-{uuid.uuid4().hex}"
    args = ["run", "--params", str(ROOT / "params" / "smoke.yaml"), "--set", "model=tests.crashing_models:killed",
            "--set", "input_shape=[3, 8, 8]", "--outputs", url, "--run-id", "r1", "--quiet"]
    assert cli.main(args) == 1
    manifest = json.loads(Store(url).read_text("failed/r1/manifest.json"))
    assert manifest["status"] == "failed" and "DeadKernelError" in manifest["error"]
    assert f"uploaded to {url}/failed/r1" in capsys.readouterr().out
    with pytest.raises(ScaleproofError, match="exists already"):
        cli.cmd_run(cli.build_parser().parse_args(args))
