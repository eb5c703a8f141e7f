"""Fleet on a local multi-node Ray cluster: each "GPU type" is a node advertising its own
accelerator_type resource (CPU stand-ins), and every member runs the real chain with papermill."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from scaleproof import cli
from scaleproof.config import Params
from scaleproof.errors import ParamsError
from scaleproof.fleet import RESOURCE_PREFIX, member_timeout_s, run_fleet, verify_fleet
from scaleproof.provenance import read_json
from tests import ROOT

# two members, each on a node of its own, share this host's cores: under make test's two workers they run alone
pytestmark = pytest.mark.whole_machine

NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
# the smallest real chain: the smoke profile, one batch size, short LoadGen runs, a two-run peak search
FAST = dict(model="tests.user_models:tiny_unless_marked_node", input_shape=[3, 16, 16], precisions=["fp32"],
            batch_sizes=[8], max_batch=8, batcher_max_batch=8, peak_repeats=1, peak_search_runs=2,
            loadgen_min_duration_s=0.2, min_time_s=0.1, val_samples=64, static_search=False,
            confirm_steps=6)  # two members share 2 cores: a short search overshoots, the confirmation steps down


def ray_start(address: str, gpu_type: str, hide_checkout: bool = False, log: Path | None = None,
              **env: str) -> subprocess.Popen:
    """A node in its own `ray start` process (its output in `log`, if given). With `hide_checkout`, in a mount
    namespace where this checkout's lib/, notebooks/ and tests/ are empty folders: the node has the dependencies
    but not the project, like a worker image without the repository."""
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--address", address, "--num-cpus", "1",
           "--object-store-memory", str(NODE["object_store_memory"]),
           "--resources", json.dumps({RESOURCE_PREFIX + gpu_type: 1}), "--block", "--disable-usage-stats"]
    if hide_checkout:
        empty = tempfile.mkdtemp(prefix="no-checkout-")
        hide = " && ".join(f"mount --bind {empty} {ROOT / d}" for d in ("lib", "notebooks", "tests"))
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{hide} && exec {shlex.join(cmd)}"]
    if log is None:
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def stop(node: subprocess.Popen) -> None:
    node.terminate()
    try:
        node.wait(timeout=60)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()


def can_hide_checkout() -> bool:
    """unshare and bind mounts need root (or user namespaces); CI containers usually have them."""
    try:
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                f"mount --bind {tempfile.mkdtemp()} {ROOT / 'lib'}"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):  # no unshare at all
        return False
    return probe.returncode == 0


def wait_for_node(cluster, gpu_type: str, timeout_s: float = 90, process: subprocess.Popen | None = None) -> None:
    """Until a live node has `gpu_type`; fails at once if `process` (its `ray start`) has exited."""
    deadline = time.time() + timeout_s
    while not any(RESOURCE_PREFIX + gpu_type in n["Resources"] for n in nodes(cluster) if n["Alive"]):
        assert process is None or process.poll() is None, f"`ray start` of the {gpu_type} node exited ({process.returncode})"
        assert time.time() < deadline, f"the {gpu_type} node did not join within {timeout_s} s"
        time.sleep(1)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={**NODE, "resources": {RESOURCE_PREFIX + "CPU-A": 1},
                                                      "include_dashboard": False})
    try:
        c.add_node(**NODE, resources={RESOURCE_PREFIX + "CPU-B": 1})
        c.add_node(**NODE, resources={RESOURCE_PREFIX + "CPU-BROKEN": 1}, env_vars={"SCALEPROOF_TEST_BROKEN_NODE": "1"})
        c.add_node(**NODE, resources={RESOURCE_PREFIX + "CPU-STALLED": 1}, env_vars={"SCALEPROOF_TEST_STALLED_NODE": "1"})
        yield c  # run_fleet connects with the project's runtime environment and disconnects when done
    finally:
        c.shutdown()


def nodes(cluster):
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        return ray.nodes()
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def fleet(cluster, tmp_path_factory):
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml", FAST)
    out = tmp_path_factory.mktemp("fleets")
    result = run_fleet(params, ["CPU-A", "CPU-B", "CPU-BROKEN", "T4"], outputs=str(out), fleet_id="f1",
                       address=cluster.address)
    return result, out / "f1"


def test_each_type_ran_on_its_own_node(cluster, fleet):
    result, fleet_dir = fleet
    members = {m["gpu_type"]: m for m in result["members"]}
    assert members["CPU-A"]["status"] == members["CPU-B"]["status"] == "succeeded"
    node_of_type = {k[len(RESOURCE_PREFIX):]: n["NodeID"] for n in nodes(cluster) for k in n["Resources"]
                    if k.startswith(RESOURCE_PREFIX)}
    for t in ("CPU-A", "CPU-B"):
        assert members[t]["node_id"] == node_of_type[t]
        run = read_json(fleet_dir / members[t]["run"] / "manifest.json")
        assert run["status"] == "succeeded" and members[t]["run"] == f"runs/{t}"
    assert members["CPU-A"]["node_id"] != members["CPU-B"]["node_id"]
    for t in ("CPU-A", "CPU-B"):  # the code came with the task (Ray runtime_env), not from this checkout
        assert "runtime_resources" in members[t]["code"]["package"] and str(ROOT) not in members[t]["code"]["package"]


def test_a_failed_member_is_reported_while_the_others_complete(fleet):
    result, fleet_dir = fleet
    broken = next(m for m in result["members"] if m["gpu_type"] == "CPU-BROKEN")
    assert broken["status"] == "failed" and "01_export" in broken["error"] and broken["run"] == "runs/failed/CPU-BROKEN"
    assert (fleet_dir / broken["run"] / "notebooks" / "01_export.ipynb").is_file()  # its log is kept


def test_a_type_without_a_node_is_not_run_and_not_waited_for(fleet):
    result, _ = fleet
    t4 = next(m for m in result["members"] if m["gpu_type"] == "T4")
    assert t4["status"] == "not run" and "no node with accelerator_type:T4" in t4["error"] and t4["run"] is None


def test_fleet_report_compares_the_types(fleet):
    _, fleet_dir = fleet
    summary = read_json(fleet_dir / "fleet_report.json")
    assert {r["gpu_type"] for r in summary["rows"]} == {"CPU-A", "CPU-B"}
    engines = {t: {r["engine"] for r in summary["rows"] if r["gpu_type"] == t} for t in ("CPU-A", "CPU-B")}
    for t in ("CPU-A", "CPU-B"):  # every engine is priced, or excluded with its reason in the member's report
        excluded = {x["engine"] for x in read_json(fleet_dir / "runs" / t / "cost_report" / "cost_report.json")["excluded"]}
        # (on a loaded machine an engine's capacity may not confirm: then it is excluded, with why)
        assert engines[t] and not engines[t] & excluded and engines[t] | excluded == {"torch-fp32", "onnxruntime-fp32"}
    cheapest, html = summary["cheapest"], (fleet_dir / "fleet_report.html").read_text()
    tie = [w for w in summary["warnings"] if w.startswith("no cheapest type named")]
    if tie:  # two members on one host: their cost ranges usually overlap, and then no winner is named
        assert cheapest is None and "No cheapest type is named" in html and "Cheapest for" not in html
    else:
        assert cheapest["annual_usd"] == min(r["annual_usd"] for r in summary["rows"]) and "Cheapest for" in html
    for r in summary["rows"]:  # each figure traced to its run's manifest
        assert r["manifest_sha256"] == read_json(fleet_dir / "manifest.json")["members"][
            ["CPU-A", "CPU-B", "CPU-BROKEN", "T4"].index(r["gpu_type"])]["manifest_sha256"]
    assert "CPU-A" in html and "CPU-B" in html and "not run" in html


def test_verify_checks_the_fleet_and_every_member(fleet, tmp_path, capsys):
    _, fleet_dir = fleet
    assert verify_fleet(fleet_dir)[0] == []
    assert cli.main(["verify", str(fleet_dir)]) == 0 and "2 member runs" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(fleet_dir, copy)
    bench = copy / "runs" / "CPU-B" / "benchmark" / "benchmark.json"
    doc = json.loads(bench.read_text())
    next(e for e in doc["engines"] if e["capacity"])["capacity"]["qps"] *= 2  # a priced figure, doubled
    bench.write_text(json.dumps(doc))
    problems, _ = verify_fleet(copy)
    assert any(p.startswith("runs/CPU-B: benchmark/benchmark.json: changed") for p in problems)


def test_fleet_of_only_missing_types_exits_1_at_once(cluster, tmp_path, capsys):
    code = cli.main(["fleet", "--params", str(ROOT / "params" / "smoke.yaml"), "--gpus", "V100,L4",
                     "--outputs", str(tmp_path), "--fleet-id", "none", "--address", cluster.address])
    out = capsys.readouterr().out
    assert code == 1 and "0 of 2 GPU types succeeded" in out
    assert re.search(r"^  V100 +not run", out, re.M) and re.search(r"^  L4 +not run", out, re.M)
    assert "No member run succeeded" in (tmp_path / "none" / "fleet_report.html").read_text()


def test_fleet_folders_are_never_reused(cluster, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(Exception, match="exists; choose another --fleet-id"):
        run_fleet(Params(), ["CPU-A"], outputs=str(tmp_path), fleet_id="taken", address=cluster.address)


def test_verify_catches_a_member_status_changed_in_the_manifest(fleet, tmp_path):
    _, fleet_dir = fleet
    copy = tmp_path / "copy"
    shutil.copytree(fleet_dir, copy)
    manifest = read_json(copy / "manifest.json")
    next(m for m in manifest["members"] if m["gpu_type"] == "CPU-B")["status"] = "failed"  # hides its figures
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems, _ = verify_fleet(copy)
    assert any(p.startswith("member CPU-B: manifest.json says 'failed'") and "fleet.json says 'succeeded'" in p
               for p in problems)
    next(m for m in manifest["members"] if m["gpu_type"] == "T4")["status"] = "running"  # a driver that died
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert any(p.startswith("member T4: still 'running'") for p in verify_fleet(copy)[0])


def test_the_report_warns_that_members_shared_a_host(fleet):
    _, fleet_dir = fleet
    summary = read_json(fleet_dir / "fleet_report.json")
    assert any("CPU-A, CPU-B ran on the same host" in w for w in summary["warnings"])
    assert "ran on the same host" in (fleet_dir / "fleet_report.html").read_text()


def test_storage_the_nodes_cannot_see_is_refused_before_any_member_starts(cluster):
    import fsspec

    # memory:// lives in the driver's process: the node's task sees an empty filesystem, as a node sees
    # another machine's local outputs/
    with pytest.raises(ParamsError, match=r"is not storage the driver and every node share: CPU-A \(host "):
        run_fleet(Params(), ["CPU-A"], outputs="memory://fleets", fleet_id="unshared", address=cluster.address)
    memory = fsspec.filesystem("memory")
    assert not memory.exists("/fleets/unshared/runs") and not memory.glob("/fleets/unshared/.storage-probe*"), \
        "no member started, no probe left behind"


def test_a_stalled_member_is_stopped_by_the_profile_timeout_and_kept_in_runs_failed(cluster, tmp_path):
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml", {**FAST, "member_timeout_s": 15})
    result = run_fleet(params, ["CPU-STALLED"], outputs=str(tmp_path), fleet_id="stall",  # no timeout_s given
                       address=cluster.address)
    m = result["members"][0]
    assert m["status"] == "failed" and "did not finish within 15 s" in m["error"]
    assert m["run"] == "runs/failed/CPU-STALLED"
    kept = tmp_path / "stall" / m["run"]
    assert "did not finish within 15 s" in (kept / "FAILED.txt").read_text() and (kept / "params.yaml").is_file()
    assert not (tmp_path / "stall" / "runs" / ".staging" / "CPU-STALLED").exists()
    assert verify_fleet(tmp_path / "stall")[0] == []


def test_the_default_member_timeout_grows_with_the_profile():
    small, big = Params(), Params(precisions=["fp32", "fp16", "int8"], confirm_steps=8)
    assert 900 < member_timeout_s(small) < member_timeout_s(big)
    assert member_timeout_s(Params(member_timeout_s=42)) == 42


def test_ctrl_c_keeps_the_finished_member_and_marks_the_other_interrupted(cluster, tmp_path):
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml", FAST)

    def press_ctrl_c_after_the_first_member(line):  # CPU-BROKEN finishes (failed) within seconds
        if "CPU-BROKEN: failed" in line:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_fleet(params, ["CPU-BROKEN", "CPU-STALLED"], outputs=str(tmp_path), fleet_id="ctrl-c",
                  address=cluster.address, log=press_ctrl_c_after_the_first_member)
    fleet_dir = tmp_path / "ctrl-c"
    members = {m["gpu_type"]: m for m in read_json(fleet_dir / "fleet.json")["members"]}
    assert members["CPU-BROKEN"]["status"] == "failed" and members["CPU-BROKEN"]["run"] == "runs/failed/CPU-BROKEN"
    assert (fleet_dir / "runs" / "failed" / "CPU-BROKEN" / "notebooks" / "01_export.ipynb").is_file()  # kept
    assert members["CPU-STALLED"]["status"] == "interrupted" and members["CPU-STALLED"]["run"] == "runs/failed/CPU-STALLED"
    assert verify_fleet(fleet_dir)[0] == [], "the fleet's files and manifest were written before the interrupt"


def test_a_type_whose_node_arrives_while_the_fleet_waits_is_run(cluster, tmp_path):
    """As an autoscaler would: the node of CPU-LATE joins a few seconds after the fleet asked for it (it is
    marked broken, so its member fails fast in 01_export: it ran, it was not reported "not run")."""
    import threading

    nodes_started = []

    def start_late_node():  # in its own process: Cluster.add_node only works from the main thread
        nodes_started.append(ray_start(cluster.address, "CPU-LATE", SCALEPROOF_TEST_BROKEN_NODE="1"))

    late = threading.Timer(3.0, start_late_node)
    late.start()
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml", {**FAST, "member_pending_wait_s": 30})
    try:
        result = run_fleet(params, ["CPU-LATE"], outputs=str(tmp_path), fleet_id="late",
                           address=cluster.address)
    finally:
        late.join()
        for p in nodes_started:
            stop(p)
    members = {m["gpu_type"]: m for m in result["members"]}
    assert members["CPU-LATE"]["status"] == "failed" and "01_export" in members["CPU-LATE"]["error"]
