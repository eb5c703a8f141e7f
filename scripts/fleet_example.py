"""Re-create the example fleet kept in benchmarks/results/fleet-example/ (the default of 07_fleet_report):
`python scripts/fleet_example.py [--out benchmarks/results/fleet-example]`.

Starts a local Ray cluster of two nodes, each advertising a stand-in accelerator type (CPU-A, CPU-B)
as a GPU node advertises `accelerator_type:T4`, asks for a third type (T4) that no node has, and runs
`scaleproof fleet`'s code with the smoke profile on the small user model of the tests, exactly as
tests/test_fleet.py does. Then it keeps the small files: the fleet's own files and, of each member
run, its manifest, benchmark and cost JSON (engines, ONNX files and LoadGen logs stay behind, so
`scaleproof verify` on the kept copy reports those as missing; verify the full fleet folder instead).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP_MEMBER = ("manifest.json", "params.yaml", "benchmark/benchmark.json", "cost_report/cost_report.json",
               "validate/validate.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fleet-example",
                    help="folder to write the kept files into (replaced)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))  # tests.user_models, for the Ray workers too (they inherit PYTHONPATH)
    import os

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    from ray.cluster_utils import Cluster

    from scaleproof.config import Params
    from scaleproof.fleet import FLEET_FILES, RESOURCE_PREFIX, run_fleet
    from tests.test_fleet import FAST, NODE

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "resources": {RESOURCE_PREFIX + "CPU-A": 1},
                                                            "include_dashboard": False})
    cluster.add_node(**NODE, resources={RESOURCE_PREFIX + "CPU-B": 1})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            params = Params.from_yaml(ROOT / "params" / "smoke.yaml", FAST)
            # run_fleet connects as `scaleproof fleet --address` does: with the project's runtime environment
            fleet = run_fleet(params, ["CPU-A", "CPU-B", "T4"], outputs=tmp, fleet_id="fleet-example",
                              address=cluster.address)
            src = Path(tmp) / "fleet-example"
            shutil.rmtree(args.out, ignore_errors=True)
            for rel in (*FLEET_FILES, "manifest.json"):
                (args.out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, args.out / rel)
            for m in fleet["members"]:
                for rel in KEEP_MEMBER if m["status"] == "succeeded" else ():
                    (args.out / m["run"] / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src / m["run"] / rel, args.out / m["run"] / rel)
    finally:
        cluster.shutdown()
    print(f"kept the example fleet in {args.out}")


if __name__ == "__main__":
    main()
