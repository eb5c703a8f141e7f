"""Where shipped data and notebooks live, and the per-stage layout of a run folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parents[1]  # lib/scaleproof -> project root

STAGES = ("01_export", "02_calibrate", "03_build", "04_validate", "05_benchmark", "06_cost_report")


def data_dir() -> Path:
    return Path(os.environ.get("SCALEPROOF_DATA", PROJECT_DIR / "data"))


def notebooks_dir() -> Path:
    return Path(os.environ.get("SCALEPROOF_NOTEBOOKS", PROJECT_DIR / "notebooks"))


def stage_key(stage: str) -> str:
    """`01_export` -> `export`: the folder and result-file name of a stage inside a run."""
    return stage.split("_", 1)[1]


def stage_dir(run_dir: str | Path, stage: str) -> Path:
    return Path(run_dir) / stage_key(stage)


def result_path(run_dir: str | Path, stage: str) -> Path:
    key = stage_key(stage)
    return Path(run_dir) / key / f"{key}.json"
