"""The ledger of runs: every published run (local, a fleet member, or a folder copied from another machine)
indexed in SQLite from its manifest and stage results, with comparisons, trends, a performance gate, the
cheapest device type per model, and an export to MLflow."""

from .analysis import check, choice, compare, trend
from .store import DEFAULT_PATH, add_runs, list_runs

__all__ = ["DEFAULT_PATH", "add_runs", "check", "choice", "compare", "list_runs", "trend"]
