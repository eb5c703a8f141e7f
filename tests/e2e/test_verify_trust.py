"""What `verify` trusts: it never reads outside the folder it checks nor follows a link, everything on disk must be
recorded, and a damaged record is one line and exit 1 — for runs, fleets and Triton repositories alike; a fleet is
checked member by member whatever its record says; a repository never reuses a version number, refuses versions it
did not record, and takes one deploy at a time."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scaleproof
from scaleproof import cli, triton_repo
from scaleproof.audit import verify_run
from scaleproof.errors import ParamsError
from scaleproof.fleet import FLEET_FORMAT, verify_fleet
from scaleproof.provenance import sha256_file, write_json
from tests import ROOT

LIB = str(Path(scaleproof.__file__).parents[1])  # the scaleproof under test, for its subprocesses

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A published smoke run whose engines are priced whatever the machine's load (a generous SLA), so that it has
    claims to check and engines to deploy."""
    from scaleproof.config import Params
    from scaleproof.pipeline import run_chain

    params = Params.from_yaml(ROOT / "params" / "smoke.yaml").with_(sla_p99_ms=500.0, precisions=["fp32"])
    outcome = run_chain(params, run_id="priced", outputs=tmp_path_factory.mktemp("runs"), progress=False)
    assert outcome.ok and outcome.priced, outcome.error
    return outcome.run_dir


@pytest.fixture
def run(published, tmp_path):
    copy = tmp_path / "run" / published.name
    shutil.copytree(published, copy)
    return copy


def rewrite_manifest(run: Path, change) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    change(manifest)
    (run / "manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_path_leaving_the_run_is_refused_not_read(run, capsys):
    outside = run.parent.parent / "outside.txt"
    outside.write_text("a file outside the run\n")
    rel = "../../outside.txt"
    rewrite_manifest(run, lambda m: m["artifacts"].update({rel: {"sha256": sha256_file(outside), "bytes": 23}}))
    problems, _ = verify_run(run)
    assert f"{rel}: leaves the folder it is checked in (refused, not read)" in problems
    rewrite_manifest(run, lambda m: m["artifacts"].update({"/etc/hostname": {"sha256": "0" * 64}}))
    assert any(p.startswith("/etc/hostname: leaves the folder") for p in verify_run(run)[0])
    assert cli.main(["verify", str(run)]) == 1 and "leaves the folder" in capsys.readouterr().out


def test_a_claim_citing_a_file_outside_the_run_is_refused(run):
    cost = run / "cost_report" / "cost_report.json"
    doc = json.loads(cost.read_text())
    doc["claims"][0]["source"] = "../../../../../../etc/hostname"
    cost.write_text(json.dumps(doc))
    assert any("its source '../../../../../../etc/hostname' leaves the folder" in p for p in verify_run(run)[0])


@pytest.mark.parametrize("how", ["folder linked to /etc", "self loop", "artifact replaced by an identical copy outside"])
def test_symbolic_links_in_a_run_are_refused_never_followed(run, how):
    if how == "folder linked to /etc":
        (run / "extra").symlink_to("/etc")
        expect = "extra: a symbolic link (to '/etc')"
    elif how == "self loop":
        (run / "loop").symlink_to(run / "loop")
        expect = "loop: a symbolic link"
    else:
        target = run / "report.html"
        copy = run.parent.parent / "report-copy.html"
        shutil.copyfile(target, copy)
        target.unlink()
        target.symlink_to(copy)
        expect = "report.html: a symbolic link (refused, not followed)"
    problems, _ = verify_run(run)
    assert any(p.startswith(expect) for p in problems), problems


def test_a_file_added_anywhere_is_a_finding(run):
    (run / "logs" / "deep").mkdir()
    (run / "logs" / "deep" / "note.txt").write_text("x")
    assert "logs/deep/note.txt: not in the manifest (added after the run)" in verify_run(run)[0]


# fleets ------------------------------------------------------------------------------------------------------------
@pytest.fixture
def fleet(published, tmp_path):
    """A fleet folder of two members, both copies of a real published run, with the records the driver writes."""
    from scaleproof.fleet import write_fleet_manifest

    fleet_dir = tmp_path / "fleet"
    members = []
    for t in ("CPU-A", "CPU-B"):
        shutil.copytree(published, fleet_dir / "runs" / t)
        members.append({"gpu_type": t, "status": "succeeded", "run": f"runs/{t}",
                        "manifest_sha256": sha256_file(fleet_dir / "runs" / t / "manifest.json"), "error": None})
    write_json(fleet_dir / "fleet.json", {"fleet_format": FLEET_FORMAT, "fleet_id": "f", "members": members})
    write_fleet_manifest(fleet_dir)
    assert verify_fleet(fleet_dir) == ([], verify_fleet(fleet_dir)[1])
    return fleet_dir


def mark_failed(fleet_dir: Path, gpu_type: str) -> None:
    for name in ("fleet.json", "manifest.json"):
        doc = json.loads((fleet_dir / name).read_text())
        m = next(m for m in doc["members"] if m["gpu_type"] == gpu_type)
        m["status"] = "failed"
        (fleet_dir / name).write_text(json.dumps(doc))
    doc = json.loads((fleet_dir / "manifest.json").read_text())  # fleet.json's new hash, as a careful editor would
    doc["files"]["fleet.json"]["sha256"] = sha256_file(fleet_dir / "fleet.json")
    (fleet_dir / "manifest.json").write_text(json.dumps(doc))


def test_a_member_marked_failed_is_still_checked(fleet, capsys):
    mark_failed(fleet, "CPU-B")
    problems, _ = verify_fleet(fleet)
    assert any("member CPU-B: recorded as 'failed' but runs/CPU-B is a complete run that verifies" in p
               for p in problems), problems
    bench = fleet / "runs" / "CPU-B" / "benchmark" / "benchmark.json"
    doc = json.loads(bench.read_text())
    next(e for e in doc["engines"] if e.get("capacity"))["capacity"]["qps"] *= 10
    bench.write_text(json.dumps(doc))
    problems, _ = verify_fleet(fleet)
    assert any(p.startswith("runs/CPU-B: benchmark/benchmark.json: changed") for p in problems), problems
    assert cli.main(["verify", str(fleet)]) == 1 and "FAILED" in capsys.readouterr().out


def test_the_fleet_manifest_hash_is_checked(fleet, capsys):
    assert cli.main(["verify", str(fleet), "--manifest-sha256", "0" * 64]) == 1
    assert "printed when the fleet ended" in capsys.readouterr().out
    assert cli.main(["verify", str(fleet), "--manifest-sha256", sha256_file(fleet / "manifest.json")]) == 0


@pytest.mark.parametrize("damage", ["truncated", "no files key"])
def test_a_damaged_fleet_manifest_is_one_line_and_exit_1(fleet, damage, capsys):
    text = (fleet / "manifest.json").read_text()
    if damage == "truncated":
        (fleet / "manifest.json").write_text(text[: len(text) // 2])
    else:
        doc = json.loads(text)
        del doc["files"]
        (fleet / "manifest.json").write_text(json.dumps(doc))
    assert cli.main(["verify", str(fleet)]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert ("manifest.json: not valid JSON" if damage == "truncated" else "manifest.json: damaged (no 'files' key)") \
        in out.out


# Triton repositories -----------------------------------------------------------------------------------------------
@pytest.fixture
def repo(published, tmp_path):
    repo = tmp_path / "models"
    triton_repo.deploy(published, repo, log=lambda _: None)
    doc = triton_repo.deploy(published, repo, log=lambda _: None)
    assert {d["version"] for d in doc["deploys"]} == {1, 2}
    return repo, doc["deploys"][-1]["model"]


def test_a_deleted_version_is_never_given_again_and_verify_sees_it_missing(published, repo, capsys):
    repo, model = repo
    shutil.rmtree(repo / model / "2")
    problems, _ = triton_repo.verify_repo(repo)
    assert f"{model}/2/: missing (deploy.json records this version)" in problems
    doc = triton_repo.deploy(published, repo, log=lambda _: None)
    versions = [d["version"] for d in doc["deploys"] if d["model"] == model]
    assert versions == [1, 2, 3], "version 2 was recorded once: it is never reused"
    assert cli.main(["verify", str(repo)]) == 1 and f"{model}/2/: missing" in capsys.readouterr().out


def test_a_version_folder_made_by_hand_fails_verify_and_cannot_be_pinned(repo):
    repo, model = repo
    shutil.copytree(repo / model / "1", repo / model / "7")
    assert f"{model}/7/: a version folder deploy.json does not record (made by hand or left behind)" in \
        triton_repo.verify_repo(repo)[0]
    with pytest.raises(ParamsError, match=r"version 7 is not recorded .* recorded versions: \[1, 2\]"):
        triton_repo.rollback(repo, model, 7)
    assert cli.main(["rollback", str(repo), model, "--to", "7"]) == 2


def test_a_file_added_to_a_deployed_version_fails_verify(repo):
    repo, model = repo
    (repo / model / "1" / "extra.onnx").write_bytes(b"not deployed")
    assert f"{model}/1/extra.onnx: in a deployed version folder but not in deploy.json (added after the deploy)" in \
        triton_repo.verify_repo(repo)[0]


def test_a_damaged_deploy_record_is_one_line_and_exit_1(repo, capsys):
    repo, _ = repo
    text = (repo / "deploy.json").read_text()
    (repo / "deploy.json").write_text(text[:100])
    assert cli.main(["verify", str(repo)]) == 1
    out = capsys.readouterr()
    assert "deploy.json: not valid JSON" in out.out and "Traceback" not in out.out + out.err


def test_two_deploys_at_once_take_turns(published, tmp_path):
    repo = tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([LIB, str(ROOT)])}
    cmd = [sys.executable, "-m", "scaleproof.cli", "deploy", str(published), "--repo", str(repo)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    doc = json.loads((repo / "deploy.json").read_text())
    for model in {d["model"] for d in doc["deploys"]}:
        recorded = sorted(d["version"] for d in doc["deploys"] if d["model"] == model)
        assert recorded == [1, 2] == triton_repo.versions_of(repo / model), (model, recorded)
    assert triton_repo.verify_repo(repo)[0] == []
