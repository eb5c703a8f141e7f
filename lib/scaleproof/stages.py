"""Stage results on disk: each stage writes one JSON file; later stages read only those files.

When a notebook is opened on its own (JupyterLab, nbval) and an upstream result is missing, the
upstream stage runs here through lib with the same parameters, so every notebook runs top to
bottom; in a chained run the results already exist and nothing reruns.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from . import paths
from .config import Params
from .errors import ArtifactError
from .provenance import read_json, write_json

# stage -> module whose run(params) produces its result
STAGE_MODULES = {
    "01_export": "export",
    "02_calibrate": "calibrate",
    "03_build": "build",
    "04_validate": "validate",
    "05_benchmark": "bench.stage",
    "06_cost_report": "cost",
}


def write_result(run_dir, stage: str, result: dict[str, Any]) -> None:
    write_json(paths.result_path(run_dir, stage), {"stage": stage, **result})


def read_result(run_dir, stage: str) -> dict[str, Any]:
    path = paths.result_path(run_dir, stage)
    try:
        return read_json(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing: run stage {stage} first") from None
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} is not valid JSON ({e}): rerun stage {stage}") from e


def require(params: Params, stage: str) -> dict[str, Any]:
    """The result of `stage` in this run, producing it (and its own upstream) if it is missing."""
    path = paths.result_path(params.run_path, stage)
    if not path.exists():
        for upstream in paths.STAGES[: paths.STAGES.index(stage)]:
            require(params, upstream)
        print(f"[scaleproof] {path} is missing: running stage {stage} with these parameters first")
        importlib.import_module(f"scaleproof.{STAGE_MODULES[stage]}").run(params)
    return read_result(params.run_path, stage)
