"""The ledger of runs: every published run (local, a fleet member, or a folder copied from another machine)
indexed in SQLite from its manifest and stage results, with comparisons, trends, a performance gate, the
cheapest device type per model, and an export to MLflow. Imported lazily: `scaleproof --help` stays quick."""

from __future__ import annotations

from importlib import import_module
from typing import Any

WHERE = {"DEFAULT_PATH": "store", "add_runs": "store", "list_runs": "store", "check": "analysis",
         "choice": "analysis", "compare": "analysis", "trend": "analysis", "export_mlflow": "mlflow_export",
         "render_report": "report"}
__all__ = sorted(WHERE)


def __getattr__(name: str) -> Any:
    if name not in WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{WHERE[name]}"), name)
