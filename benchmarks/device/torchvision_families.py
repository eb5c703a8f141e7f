"""torchvision's families through the user-model interface (`package.module:factory` + input shape), on
this machine's GPU: export, calibrate, build and validate each, and write what the gate said.

    python benchmarks/device/torchvision_families.py OUT.json [torchvision.models:NAME ...]
"""

import json
import sys
import tempfile
import time
import traceback

from scaleproof.config import Params
from scaleproof.stages import build, calibrate, export, validate

FAMILIES = ["torchvision.models:resnet18", "torchvision.models:mobilenet_v3_small",
            "torchvision.models:efficientnet_b0", "torchvision.models:convnext_tiny"]


def main() -> None:
    out, specs = sys.argv[1], sys.argv[2:] or FAMILIES
    rows = []
    for spec in specs:
        t0 = time.time()
        params = Params(run_dir=tempfile.mkdtemp(), model=spec, input_shape=[3, 224, 224], metric="cosine",
                        precisions=["fp16", "int8"], torch_modes=["cuda_graph"], calib_samples=16, val_samples=32,
                        sensitivity=False, max_batch=8, batch_sizes=[1, 8], batcher_max_batch=8)
        row = {"model": spec}
        try:
            exported = export.run(params)
            row["reference_degenerate"] = exported["reference_degenerate"]
            cal = calibrate.run(params)
            row["int8_statement"] = cal["statement"]
            build.run(params)
            val = validate.run(params)
            row["engines"] = {e["engine"]: {k: e.get(k) for k in ("passed", "cosine_mean", "top1_agreement", "reason")}
                              for e in val["engines"]}
        except Exception as e:  # one family's failure is a result too
            row["error"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
