"""A fleet member on a node that lacks this checkout: the project reaches it through Ray's runtime environment.

A cluster of its own, in its own module, never beside tests/test_fleet.py's (under make test's two workers those
run alone, on the whole machine): nodes of one host share Ray's runtime_resources folder, and two unpacking one
package at once collided there (seen again on 2026-11-26, when this node was made CPU-B of test_fleet.py's
cluster: CPU-A's member failed with FileNotFoundError while the two unpacked the fleet's package)."""

import pytest
from ray.cluster_utils import Cluster

from scaleproof.config import Params
from scaleproof.fleet import run_fleet
from scaleproof.provenance import read_json
from tests.e2e.test_fleet import FAST, ROOT, can_hide_checkout, ray_start, stop, wait_for_node


def test_a_node_without_the_project_checkout_runs_its_member(tmp_path):
    """One node, in a mount namespace where this checkout's lib/, notebooks/ and tests/ are empty folders: its
    member succeeds with the package, notebooks and example models the fleet shipped."""
    if not can_hide_checkout():
        pytest.skip("cannot hide the checkout from a node here (unshare/mount need root or user namespaces)")
    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20,
                                                         "include_dashboard": False})
    node = ray_start(head.address, "CPU-NOCHECKOUT", hide_checkout=True, log=tmp_path / "ray-start.log")
    try:
        wait_for_node(head, "CPU-NOCHECKOUT", process=node)
        result = run_fleet(Params.from_yaml(ROOT / "params" / "smoke.yaml", FAST), ["CPU-NOCHECKOUT"],
                           outputs=str(tmp_path), fleet_id="nocheckout", address=head.address)
    finally:
        stop(node)
        head.shutdown()
    member = result["members"][0]
    assert member["status"] == "succeeded", member["error"]
    assert "runtime_resources" in member["code"]["package"] and member["code"]["commit"]  # the driver's commit
    executed = read_json(tmp_path / "nocheckout" / member["run"] / "manifest.json")["stages"]
    assert [s["status"] for s in executed] == ["succeeded"] * 6
