"""The ledger database: SQLite (the standard library's sqlite3), one row per run and one per priced engine. The
run folders stay the source of truth: a run's rows are replaced from its folder each time it is added, and the
whole index can be rebuilt by adding the folders again."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParamsError
from .copies import check_run
from .records import RunRow, run_row

DEFAULT_PATH = Path("outputs") / "ledger.sqlite"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, folder TEXT NOT NULL, manifest_sha256 TEXT NOT NULL, model TEXT NOT NULL,
    model_version TEXT NOT NULL, weights TEXT, weights_sha256 TEXT, device_type TEXT NOT NULL,
    device_count INTEGER NOT NULL, cpu TEXT, "commit" TEXT, dirty INTEGER, created TEXT NOT NULL, profile TEXT,
    status TEXT NOT NULL CHECK (status IN ('priced', 'exploratory', 'failed')), status_reason TEXT,
    headline_engine TEXT, tie TEXT, sla_p99_ms REAL, price_id TEXT, price_accelerator TEXT, usd_per_hour REAL,
    accelerators_per_instance INTEGER, checked TEXT NOT NULL, absent TEXT NOT NULL, unlisted TEXT NOT NULL,
    params TEXT NOT NULL, environment TEXT NOT NULL, added TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS engines (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, engine TEXT NOT NULL, backend TEXT,
    precision TEXT, baseline INTEGER NOT NULL, headline INTEGER NOT NULL, qps REAL NOT NULL, qps_low REAL NOT NULL,
    qps_high REAL NOT NULL, qps_range_source TEXT, p99_ms REAL NOT NULL, accuracy TEXT, accuracy_rank TEXT,
    memory_mb REAL, usd_per_1m REAL NOT NULL, usd_per_1m_low REAL NOT NULL, usd_per_1m_high REAL NOT NULL,
    fleet_usd_per_1m REAL, instances INTEGER NOT NULL, instance_qps REAL, annual_usd REAL NOT NULL,
    PRIMARY KEY (run_id, engine)
);
CREATE INDEX IF NOT EXISTS runs_by_model_device ON runs (model, device_type, created);
"""
JSON_COLUMNS = ("absent", "unlisted", "params", "environment")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def connect(path: str | Path = DEFAULT_PATH, write: bool = False) -> sqlite3.Connection:
    """The ledger at `path`: opened read-only (a missing ledger is an error, never a new empty file), or with
    `write` created with its schema where it does not exist yet. SQLite's and the file system's errors come back
    as ParamsError saying what to do."""
    path = Path(path)
    if path.is_dir():
        raise ParamsError(f"--ledger {path} is a folder: name the ledger's file, e.g. {path / 'ledger.sqlite'}")
    if not write and not path.is_file():
        raise ParamsError(f"no ledger at {path}: build one with `scaleproof ledger add RUN_FOLDER --ledger {path}`")
    try:
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path)
        else:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in ((0, SCHEMA_VERSION) if write else (SCHEMA_VERSION,)):
            raise ParamsError(f"{path} is not a ledger of schema {SCHEMA_VERSION} (its user_version is {version}): "
                              "rebuild it (`scaleproof ledger add` the run folders into a new file)")
        if write:
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except (sqlite3.Error, OSError) as e:
        raise ParamsError(f"the ledger {path} cannot be {'written' if write else 'read'} ({e}): name a writable "
                          "SQLite file made by `scaleproof ledger add`, or a new path for one") from None
    return db


def iso_date(value: str, option: str) -> str:
    """`value` if it is a calendar date written YYYY-MM-DD, else a ParamsError naming `option`."""
    try:
        if ISO_DATE.fullmatch(value):
            return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise ParamsError(f"{option} {value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-11-26")


def like(value: str) -> str:
    """A LIKE pattern matching `value` as written anywhere in a name (its % and _ are not wildcards)."""
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class Added:
    added: list[RunRow] = field(default_factory=list)
    refused: list[tuple[str, list[str]]] = field(default_factory=list)  # folder, reasons


def run_folders(path: Path) -> list[Path]:
    """`path` itself if it is a run folder, else every run folder below it (fleet members included)."""
    own = path / "manifest.json"
    if own.is_file() and '"fleet_format"' not in own.read_text(encoding="utf-8", errors="replace")[:4000]:
        return [path]  # a run folder, even one whose manifest is broken: check_run says what is wrong
    return sorted(m.parent for m in path.rglob("manifest.json")
                  if '"manifest_format"' in m.read_text(encoding="utf-8", errors="replace")[:4000])


def add_runs(paths: list[str | Path], ledger: str | Path = DEFAULT_PATH) -> Added:
    """Check each run folder (or every run folder below a folder) and index those that pass; a refused run is
    returned with its reasons and leaves the ledger as it was. Adding a run again replaces its rows."""
    from ..record_lock import locked

    out = Added()
    with locked(Path(ledger)), connect(ledger, write=True) as db:  # its check-then-write must not interleave with another add
        for given in paths:
            folders = run_folders(Path(given)) if Path(given).is_dir() else []
            if not folders:
                out.refused.append((str(given), [f"{given}: no run folder (no manifest.json of a run) found"]))
            for run in folders:
                checked = check_run(run)
                if checked.problems:
                    out.refused.append((str(run), checked.problems))
                    continue
                try:
                    row = run_row(run, checked)
                except ValueError as e:  # the manifest disagrees with the hash-checked results
                    out.refused.append((str(run), [str(e)]))
                    continue
                other = db.execute("SELECT folder, manifest_sha256 FROM runs WHERE run_id = ?", (row.run_id,)).fetchone()
                if other and other["manifest_sha256"] != row.manifest_sha256:
                    out.refused.append((str(run), [f"run id {row.run_id} is already in the ledger from {other['folder']} "
                                                   "with another manifest: two different runs share the id"]))
                    continue
                put(db, row)
                out.added.append(row)
    return out


def put(db: sqlite3.Connection, row: RunRow) -> None:
    values = asdict(row)
    engines = values.pop("engines")
    for k in JSON_COLUMNS:
        values[k] = json.dumps(values[k], sort_keys=True)
    db.execute("DELETE FROM runs WHERE run_id = ?", (row.run_id,))
    cols = list(values)
    db.execute(f"INSERT INTO runs ({', '.join(quote(c) for c in cols)}) VALUES ({', '.join('?' * len(cols))})",
               [values[c] for c in cols])
    for e in engines:
        db.execute(f"INSERT INTO engines (run_id, {', '.join(e)}) VALUES (?{', ?' * len(e)})",
                   [row.run_id, *e.values()])


def quote(column: str) -> str:
    return f'"{column}"'


def as_dict(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    for k in JSON_COLUMNS:
        if k in d and isinstance(d[k], str):
            d[k] = json.loads(d[k])
    return d


def list_runs(ledger: str | Path = DEFAULT_PATH, model: str | None = None, device: str | None = None,
              since: str | None = None, until: str | None = None, status: str | None = None,
              model_version: str | None = None) -> list[dict[str, Any]]:
    """Runs of the ledger, oldest first, each with its engines. `model` and `device` match a part of the name
    (case-insensitive); `since`/`until` are ISO dates (until includes that day)."""
    where, args = [], []
    for column, value in (("model", model), ("device_type", device)):
        if value:
            where.append(f"lower({column}) LIKE ? ESCAPE '\\'")
            args.append(like(value))
    if since:
        where.append("substr(created, 1, 10) >= ?")
        args.append(iso_date(since, "--since"))
    if until:
        where.append("substr(created, 1, 10) <= ?")
        args.append(iso_date(until, "--until"))
    if status:
        where.append("status = ?")
        args.append(status)
    if model_version is not None:
        where.append("model_version = ?")
        args.append(model_version)
    sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created, run_id"
    with connect(ledger) as db:
        runs = [as_dict(r) for r in db.execute(sql, args)]
        for r in runs:
            r["engines"] = [dict(e) for e in db.execute("SELECT * FROM engines WHERE run_id = ? ORDER BY qps DESC",
                                                        (r["run_id"],))]
    return runs


def get_run(ledger: str | Path, run_id: str) -> dict[str, Any]:
    found = [r for r in list_runs(ledger) if r["run_id"] == run_id]
    if not found:
        raise ParamsError(f"run {run_id!r} is not in the ledger {ledger}: add its folder with "
                          f"`scaleproof ledger add RUN_FOLDER --ledger {ledger}`")
    return found[0]
