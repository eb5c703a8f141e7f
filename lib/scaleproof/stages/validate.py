"""Stage 04: every engine against the FP32 PyTorch reference; the gate decides which may be priced."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .. import stages
from ..backends.low_precision import LOW_PRECISIONS
from ..config import Params
from ..datasets import Split, select, splits_for
from ..errors import ArtifactError, ParamsError
from ..io_spec import Feed, feed_len, feed_slice
from ..isolate import ChildCrashed, IsolatedWorker
from ..metrics import METRIC_WORDS, chosen_metric, gate, judge, judged_index
from ..provenance import runtime_versions
from ..zoo import load_model_for
from . import build
from .export import degenerate, torch_outputs

logger = logging.getLogger(__name__)

BATCH = 64


def engine_outputs(engine, x: Feed) -> list[np.ndarray]:
    """Every output of `engine` over the feed `x`, in batches the engine accepts."""
    step = min(BATCH, engine.max_batch)
    chunks = [engine.infer(feed_slice(x, i, i + step)) for i in range(0, feed_len(x), step)]
    return [np.concatenate(c) for c in zip(*chunks, strict=True)]


def _child_state(run_dir: str, threads: int, x: Feed) -> tuple[str, int, Feed]:
    return run_dir, threads, x


def outputs_of_built(state: tuple[str, int, Feed], entry: dict[str, Any]) -> list[np.ndarray]:
    """Load one built engine and run it over the validation inputs (in the child process: a crash stays there)."""
    run_dir, threads, x = state
    engine = build.load_engine(Path(run_dir), entry, threads)
    try:
        return engine_outputs(engine, x)
    finally:
        engine.close()


def run(params: Params) -> dict[str, Any]:
    stages.require(params, "01_export")
    built = stages.require(params, "03_build")
    run_dir = params.run_path
    bundle = load_model_for(params)
    val: Split = splits_for(params, bundle.io, bundle.dataset)["val"]
    if params.val_samples:
        val = select(val, params.val_samples, params.seed)
    names = bundle.io.outputs
    ref = torch_outputs(bundle, val.x)
    metric = chosen_metric(params, ref[judged_index(params, names)], val.y is not None)
    rows = []
    # one child runs the engines one after another; after a native crash the next engine gets a fresh one
    with IsolatedWorker(_child_state, str(run_dir), params.threads, val.x, what="an engine under validation",
                        versions=runtime_versions()) as worker:
        for entry in built["engines"]:
            try:
                row = judge(ref, worker.call(outputs_of_built, entry), val.y, params, names)
            except ChildCrashed as e:
                row = {"passed": False, "reason": f"crashed while validating {entry['name']}: {e}", "crashed": True}
            except (ParamsError, ArtifactError):
                raise  # a bad parameter or a refused engine file is the run's problem, not one engine's
            except Exception as e:  # this engine could not run these inputs: it fails, the others go on
                row = {"passed": False, "reason": f"{entry['name']} could not be run: {type(e).__name__}: {e}"}
            if not row["passed"] and entry["precision"] in LOW_PRECISIONS:
                row["sensitivity"] = (f"not searched for torchao's {entry['precision']}: no layers were found to keep; "
                                      "keep the suspect Linear layers in bfloat16 with lowp_keep_layers (build.json's "
                                      "low_precision lists them) and run 03_build again")
            rows.append({"engine": entry["name"], "backend": entry["backend"], "precision": entry["precision"], **row})
            logger.info(f"{entry['name']}: {rows[-1]['reason']}")
    result = {
        "reference": f"PyTorch FP32 eager, {params.model} ({bundle.weights})",
        "samples": len(val),
        "metric": metric.value,
        "metric_words": METRIC_WORDS[metric],
        "judged_output": names[judged_index(params, names)],
        "gate": gate(params, metric),
        "reference_degenerate": degenerate(ref[judged_index(params, names)]),
        "engines": rows,
        "passed": [r["engine"] for r in rows if r["passed"]],
        "failed": [{"engine": r["engine"], "reason": r["reason"]} for r in rows if not r["passed"]],
    }
    stages.write_result(run_dir, "04_validate", result, params)
    return result
