"""Where a prospectus is kept: prospectus.json (every figure), prospectus.xlsx and csv/ (the same values as
tables), written atomically into one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..provenance import write_json
from .workbook import csv_name, tables, write_csvs, write_workbook

JSON_NAME, XLSX_NAME, HTML_NAME, NOTEBOOK_NAME = "prospectus.json", "prospectus.xlsx", "prospectus.html", \
    "prospectus.ipynb"


def write_outputs(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": write_json(out / JSON_NAME, result), "xlsx": write_workbook(result, out / XLSX_NAME)}
    (out / "csv").mkdir(exist_ok=True)
    files.update({p.stem: p for p in write_csvs(result, out / "csv")})
    return files


def output_paths(result: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """The files `write_outputs` writes for `result`."""
    out = Path(out_dir)
    return [out / JSON_NAME, out / XLSX_NAME, *(out / "csv" / csv_name(name) for name in tables(result))]
