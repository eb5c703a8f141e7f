"""The six stages of a run, one module each, named as the stage (01_export -> `stages.export`, …,
05_benchmark -> `stages.benchmark`, 06_cost_report -> `stages.cost_report`), each with `run(params)` that its
notebook calls. This package holds what they share: their results on disk. Each stage writes one JSON file,
checked against its model in `scaleproof.results`; later stages read only those files.

When a notebook is opened on its own (JupyterLab, nbval) and an upstream result is missing, the
upstream stage runs here through lib with the same parameters, so every notebook runs top to
bottom; in a chained run the results already exist and nothing reruns.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from typing import Any

from .. import paths, results
from ..config import Params
from ..errors import ArtifactError
from ..provenance import read_json, write_json

logger = logging.getLogger(__name__)

# stage -> module whose run(params) produces its result
STAGE_MODULES = {
    "01_export": "stages.export",
    "02_calibrate": "stages.calibrate",
    "03_build": "stages.build",
    "04_validate": "stages.validate",
    "05_benchmark": "stages.benchmark",
    "06_cost_report": "stages.cost_report",
}


@functools.cache
def stage_parameters(stage: str) -> tuple[str, ...]:
    """The parameters a stage's notebook declares (its parameters cell): what its result depends on."""
    names = paths.notebook_parameters(paths.notebooks_dir() / f"{stage}.ipynb")
    return tuple(n for n in names if n != "run_dir")


def write_result(run_dir, stage: str, result: dict[str, Any], params: Params | None = None) -> None:
    """Write a stage's result; with `params`, also the values of the parameters the stage declares, so that a
    later stage (or a notebook run on its own) can refuse to build on a result made with other ones."""
    made_with = {}
    if params is not None:
        values = params.values()
        made_with = {"made_with": {k: values[k] for k in stage_parameters(stage) if k in values}}
    doc = {"stage": stage, "result_format": results.FORMAT, **made_with, **result}
    path = paths.result_path(run_dir, stage)
    results.check(stage, doc, path)  # a stage that breaks its contract fails here, not in the stage that reads it
    write_json(path, doc)


def parameter_mismatch(params: Params, stage: str, result: dict[str, Any]) -> list[str]:
    """The parameters whose value here differs from the one `stage`'s result was made with. Only parameters given
    here count (a notebook's Params holds its own parameters; the others are defaults, not choices)."""
    made_with, values = result.get("made_with") or {}, params.values()
    return [f"{k}={made_with[k]!r} there, {values.get(k)!r} here" for k in made_with
            if k in params.model_fields_set and values.get(k) != made_with[k]]


def read_result(run_dir, stage: str) -> dict[str, Any]:
    """A stage's result as written, after checking its format version and contract (`results`)."""
    path = paths.result_path(run_dir, stage)
    try:
        raw = read_json(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing: run stage {stage} first") from None
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} is not valid JSON ({e}): rerun stage {stage}") from e
    results.check(stage, raw, path)
    return raw


def require(params: Params, stage: str) -> dict[str, Any]:
    """The result of `stage` in this run, producing it (and its own upstream) if it is missing."""
    path = paths.result_path(params.run_path, stage)
    if not path.exists():
        for upstream in paths.STAGES[: paths.STAGES.index(stage)]:
            require(params, upstream)
        logger.info(f"{path} is missing: running stage {stage} with these parameters first")
        importlib.import_module(f"scaleproof.{STAGE_MODULES[stage]}").run(params)
    result = read_result(params.run_path, stage)
    differ = parameter_mismatch(params, stage, result)
    if differ:
        raise ArtifactError(f"{path} was made with other parameters ({'; '.join(differ[:5])}): this stage would "
                            f"build on results that do not belong to these parameters. Use the same values, or "
                            f"delete {path.parent} to make {stage} again with these")
    return result


def read_typed(run_dir, stage: str) -> results.StageResult:
    """`read_result`, as the stage's typed result (`results.MODELS[stage]`)."""
    return results.MODELS[stage].model_validate(read_result(run_dir, stage))


def require_typed(params: Params, stage: str) -> results.StageResult:
    """`require`, as the stage's typed result (`results.MODELS[stage]`)."""
    return results.MODELS[stage].model_validate(require(params, stage))
