"""Where shipped data and notebooks live, and the per-stage layout of a run folder."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parents[1]  # lib/scaleproof -> project root

STAGES = ("01_export", "02_calibrate", "03_build", "04_validate", "05_benchmark", "06_cost_report")


def data_dir() -> Path:
    return Path(os.environ.get("SCALEPROOF_DATA", PROJECT_DIR / "data"))


def notebooks_dir() -> Path:
    return Path(os.environ.get("SCALEPROOF_NOTEBOOKS", PROJECT_DIR / "notebooks"))


def notebook_parameters(notebook: Path) -> list[str]:
    """The names a notebook's parameters cell assigns, in order: what papermill injects (the stage notebooks'
    cells are plain `name: type = value` lines, generated from Params; tests/unit/test_notebooks_params.py holds
    this equal to `papermill.inspect_notebook`). Read here without papermill, whose import costs each stage
    kernel ~3 s. Like papermill: no cell, no names; `x: int` without a value and `a = b = 1` are not
    parameters; a name assigned twice counts once; IPython magics are skipped."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return []
    source = "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))
    names: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        else:
            continue
        if isinstance(target, ast.Name) and target.id not in names:
            names.append(target.id)
    return names


def stage_key(stage: str) -> str:
    """`01_export` -> `export`: the folder and result-file name of a stage inside a run."""
    return stage.split("_", 1)[1]


def stage_dir(run_dir: str | Path, stage: str) -> Path:
    return Path(run_dir) / stage_key(stage)


def result_path(run_dir: str | Path, stage: str) -> Path:
    key = stage_key(stage)
    return Path(run_dir) / key / f"{key}.json"
