"""Fleet on a local multi-node Ray cluster: each "GPU type" is a node advertising its own
accelerator_type resource (CPU stand-ins), and every member runs the real chain with papermill."""

import json
import re
import shutil
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from scaleproof import cli
from scaleproof.config import Params
from scaleproof.fleet import RESOURCE_PREFIX, run_fleet, verify_fleet
from scaleproof.provenance import read_json

ROOT = Path(__file__).resolve().parents[1]
NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
# the smallest real chain: the smoke profile, one batch size, short LoadGen runs, a two-run peak search
FAST = dict(model="tests.user_models:tiny_unless_marked_node", input_shape=[3, 16, 16], precisions=["fp32"],
            batch_sizes=[8], max_batch=8, batcher_max_batch=8, peak_repeats=1, peak_search_runs=2,
            loadgen_min_duration_s=0.2, min_time_s=0.1, val_samples=64,
            confirm_steps=6)  # two members share 2 cores: a short search overshoots, the confirmation steps down


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={**NODE, "resources": {RESOURCE_PREFIX + "CPU-A": 1},
                                                      "include_dashboard": False})
    c.add_node(**NODE, resources={RESOURCE_PREFIX + "CPU-B": 1})
    c.add_node(**NODE, resources={RESOURCE_PREFIX + "CPU-BROKEN": 1}, env_vars={"SCALEPROOF_TEST_BROKEN_NODE": "1"})
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def fleet(cluster, tmp_path_factory):
    params = Params.from_yaml(ROOT / "params" / "smoke.yaml", FAST)
    out = tmp_path_factory.mktemp("fleets")
    result = run_fleet(params, ["CPU-A", "CPU-B", "CPU-BROKEN", "T4"], outputs=str(out), fleet_id="f1")
    return result, out / "f1"


def test_each_type_ran_on_its_own_node(fleet):
    result, fleet_dir = fleet
    members = {m["gpu_type"]: m for m in result["members"]}
    assert members["CPU-A"]["status"] == members["CPU-B"]["status"] == "succeeded"
    node_of_type = {k[len(RESOURCE_PREFIX):]: n["NodeID"] for n in ray.nodes() for k in n["Resources"]
                    if k.startswith(RESOURCE_PREFIX)}
    for t in ("CPU-A", "CPU-B"):
        assert members[t]["node_id"] == node_of_type[t]
        run = read_json(fleet_dir / members[t]["run"] / "manifest.json")
        assert run["status"] == "succeeded" and members[t]["run"] == f"runs/{t}"
    assert members["CPU-A"]["node_id"] != members["CPU-B"]["node_id"]


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
        assert "torch-fp32" in engines[t] and engines[t] | excluded == {"torch-fp32", "onnxruntime-fp32"}
    cheapest = summary["cheapest"]
    assert cheapest["annual_usd"] == min(r["annual_usd"] for r in summary["rows"])
    for r in summary["rows"]:  # each figure traced to its run's manifest
        assert r["manifest_sha256"] == read_json(fleet_dir / "manifest.json")["members"][
            ["CPU-A", "CPU-B", "CPU-BROKEN", "T4"].index(r["gpu_type"])]["manifest_sha256"]
    html = (fleet_dir / "fleet_report.html").read_text()
    assert "Cheapest for" in html and "CPU-A" in html and "CPU-B" in html and "not run" in html


def test_verify_checks_the_fleet_and_every_member(fleet, tmp_path, capsys):
    _, fleet_dir = fleet
    assert verify_fleet(fleet_dir)[0] == []
    assert cli.main(["verify", str(fleet_dir)]) == 0 and "2 member runs" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(fleet_dir, copy)
    bench = copy / "runs" / "CPU-B" / "benchmark" / "benchmark.json"
    doc = json.loads(bench.read_text())
    doc["engines"][0]["capacity"]["qps"] *= 2
    bench.write_text(json.dumps(doc))
    problems, _ = verify_fleet(copy)
    assert any(p.startswith("runs/CPU-B: benchmark/benchmark.json: changed") for p in problems)


def test_fleet_of_only_missing_types_exits_1_at_once(cluster, tmp_path, capsys):
    code = cli.main(["fleet", "--params", str(ROOT / "params" / "smoke.yaml"), "--gpus", "V100,L4",
                     "--outputs", str(tmp_path), "--fleet-id", "none"])
    out = capsys.readouterr().out
    assert code == 1 and "0 of 2 GPU types succeeded" in out
    assert re.search(r"^  V100 +not run", out, re.M) and re.search(r"^  L4 +not run", out, re.M)
    assert "No member run succeeded" in (tmp_path / "none" / "fleet_report.html").read_text()


def test_fleet_folders_are_never_reused(cluster, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(Exception, match="exists; choose another --fleet-id"):
        run_fleet(Params(), ["CPU-A"], outputs=str(tmp_path), fleet_id="taken")
