"""The runner: execute the six stage notebooks in order with papermill, into one run folder.

A run is built in `outputs/.staging/<run_id>/` and published by one rename to `outputs/<run_id>/`
only when every stage succeeded. A stage that raises ends the run: its executed notebook stays as
the log, the manifest says which stage and cell failed, and the folder goes to
`outputs/failed/<run_id>/`, never to where a successful run would be. Each stage's cell output
streams, and the faulthandler trace of a kernel that died in native code, are kept in `logs/`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from . import cost, paths, run_folders
from .config import Params
from .errors import StageFailed
from .isolate import call_isolated, read_fault_log
from .log import run_log
from .presentation.common import render_html
from .provenance import environment, sha256_file, write_json
from .stop_signals import RunStopped, stopping_on_signals

logger = logging.getLogger(__name__)

FAULT_LOG_ENV = "SCALEPROOF_FAULT_LOG"  # read by scaleproof/__init__.py in the kernel
MANIFEST_FORMAT = 1


# the stage kernels are local, on loopback: ipykernel's "running over TCP without encryption" warning (and other
# kernel-app chatter) would be printed once per stage; the cells' own warnings and errors still reach the logs
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
# how papermill (nbclient) ends a stage's kernel: at once (SIGKILL to its process group: the kernel, its isolated
# children, multiprocessing's resource tracker). A stage's results, caches and logs are on disk when its last cell
# ends, and the parent writes the executed notebook; a graceful shutdown waited for a kernel that did not exit on
# request (01_export 6.87 s graceful vs 4.94 s immediate, 04_validate 6.55 vs 4.06 s, one run each, 2-core machine,
# 2026-11-26; 0.7-2.7 s per stage and about 8 s per `make run` set against the stage times of a fresh clone of 807f308 the same day)
KERNEL_SHUTDOWN = "immediate"


def execute_notebook(src: Path, out_nb: Path, parameters: dict[str, Any], progress: bool = False, **kwargs) -> None:
    """`src` executed by papermill into `out_nb`, from notebooks/, on .venv's python3 kernel with the settings above
    (kwargs: papermill's own, such as stdout_file)."""
    import papermill

    papermill.execute_notebook(str(src), str(out_nb), parameters=parameters, progress_bar=progress,
                               cwd=str(paths.notebooks_dir()), kernel_name="python3", extra_arguments=KERNEL_ARGS,
                               shutdown_kernel=KERNEL_SHUTDOWN, **kwargs)


@dataclass
class RunOutcome:
    status: str  # "succeeded" | "failed"
    run_dir: Path
    stages: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    priced: int | None = None  # engines the cost report could price (0: the run measured nothing priceable)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def new_run_id(params: Params) -> str:
    model = re.sub(r"[^A-Za-z0-9]+", "-", params.model.split(":")[-1]).strip("-")[:32]
    return f"{dt.datetime.now():%Y%m%d-%H%M%S}-{model}-{secrets.token_hex(2)}"


def hash_artifacts(run_dir: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file in the run except the manifest itself."""
    out = {}
    for f in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(run_dir).as_posix()
        if rel != "manifest.json":
            out[rel] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    return out


def run_data(run_dir: Path) -> dict[str, Any] | None:
    """The model's weights and the calibration/validation data of the run, with their sha256 (from 01_export)."""
    try:
        exported = json.loads(paths.result_path(run_dir, "01_export").read_text())
    except (OSError, ValueError):
        return None
    return {"weights": exported.get("weights"), "weights_sha256": exported.get("weights_sha256"),
            **exported.get("data", {})}


def write_manifest(run_dir: Path, run_id: str, status: str, params: Params, stages: list[dict[str, Any]],
                   started: float, command: str, error: str | None = None) -> Path:
    manifest = {
        "manifest_format": MANIFEST_FORMAT,
        "run_id": run_id,
        "status": status,
        "error": error,
        "created": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 2),
        "command": command,
        "params": {k: v for k, v in params.values().items() if k != "run_dir"},
        "environment": environment(),
        "data": run_data(run_dir),
        "stages": stages,
        "artifacts": hash_artifacts(run_dir),
        "folders": sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_dir()),
    }
    return write_json(run_dir / "manifest.json", manifest)


def describe_failure(exc: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"cell {exc.cell_index} (execution count {exc.exec_count}) raised {exc.ename}: {exc.evalue}"
    return f"{type(exc).__name__}: {exc}"


def stage_logs(run_dir: Path, stage: str) -> dict[str, Path]:
    return {k: run_dir / "logs" / f"{stage}.{k}.log" for k in ("fault", "stdout", "stderr")}


@contextmanager
def capture_stage(run_dir: Path, stage: str) -> Iterator[tuple[IO[str], IO[str]]]:
    """Where a stage's kernel leaves its cause of death: papermill copies the cells' stdout/stderr streams
    to two files, and the kernel (which inherits our environment) has faulthandler write a native crash's
    trace to the third. Empty logs are removed, so a clean stage adds no files to the run."""
    logs = stage_logs(run_dir, stage)
    logs["fault"].parent.mkdir(exist_ok=True)
    before = os.environ.get(FAULT_LOG_ENV)
    os.environ[FAULT_LOG_ENV] = str(logs["fault"])
    try:
        with open(logs["stdout"], "w") as out, open(logs["stderr"], "w") as err:
            yield out, err
    finally:
        if before is None:
            os.environ.pop(FAULT_LOG_ENV, None)
        else:
            os.environ[FAULT_LOG_ENV] = before
        for f in logs.values():
            if f.is_file() and f.stat().st_size == 0:
                f.unlink()
        if not any(logs["fault"].parent.iterdir()):
            logs["fault"].parent.rmdir()


def crash_cause(run_dir: Path, stage: str, exc: BaseException) -> str:
    """The stage's fault trace and last stderr lines, when the kernel died rather than a cell raising."""
    from nbclient.exceptions import DeadKernelError

    logs = stage_logs(run_dir, stage)
    trace, parts = read_fault_log(logs["fault"]), []
    if trace:
        parts.append(f"its kernel crashed; logs/{stage}.fault.log:\n{trace}")
    elif isinstance(exc, DeadKernelError):  # SIGKILL (the out-of-memory killer, say) leaves no trace
        parts.append("no fault trace: the kernel was killed by a signal Python cannot catch (SIGKILL, e.g. "
                     "the out-of-memory killer)")
    if parts and logs["stderr"].is_file():
        lines = logs["stderr"].read_text(errors="replace").strip().splitlines()[-10:]
        if lines:
            parts.append(f"last lines of logs/{stage}.stderr.log:\n" + "\n".join(lines))
    return "".join(f"\n{p}" for p in parts)


def execute_stages(staging: Path, values: dict[str, Any], stages: list[dict[str, Any]], progress: bool) -> None:
    """Each stage notebook with papermill, in order, into `staging`; `stages` gets a record per stage as it runs
    (the failed one says why). Raises on the first failure."""
    for stage in paths.STAGES:
        src = paths.notebooks_dir() / f"{stage}.ipynb"
        out_nb = staging / "notebooks" / f"{stage}.ipynb"
        out_nb.parent.mkdir(exist_ok=True)
        wanted = {k: values[k] for k in paths.notebook_parameters(src) if k in values}
        t0 = time.time()
        logger.info(f"{stage} …")
        record = {"stage": stage, "notebook": f"notebooks/{stage}.ipynb",
                  "result": str(paths.result_path(".", stage)), "status": "running"}
        stages.append(record)
        try:
            with capture_stage(staging, stage) as (out, err):
                # stdout_file/stderr_file take effect without log_output (which would echo every cell)
                execute_notebook(src, out_nb, wanted, progress, stdout_file=out, stderr_file=err)
        except BaseException as exc:
            record.update(status="failed", seconds=round(time.time() - t0, 2),
                          error=describe_failure(exc) + crash_cause(staging, stage, exc))
            raise
        record.update(status="succeeded", seconds=round(time.time() - t0, 2))
        logger.info(f"{stage} done in {record['seconds']:.1f} s")


def failure_of(stages: list[dict[str, Any]], exc: BaseException) -> str:
    """What stopped a run: the stage that failed and why, or what interrupted it between stages."""
    failed = next((r for r in stages if r["status"] == "failed"), None)
    if isinstance(exc, RunStopped):
        where = f"during stage {failed['stage']}" if failed else "between stages"
        return f"stopped by {exc.name} {where}: the stage's kernel and its child processes were ended"
    return f"stage {failed['stage']} failed in {failed['error']}" if failed else \
        f"run interrupted: {describe_failure(exc)}"


def end_children() -> None:
    """SIGKILL every process this runner started that is still alive (a stage's kernel and what it spawned): a
    stopped run leaves nothing running."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for c in children:
        try:
            c.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=5)


# SIGTERM, SIGHUP and SIGINT end the run as a failed stage does: recorded in failed/<id>, the id freed
@stopping_on_signals
def run_chain(params: Params, run_id: str | None = None, outputs: str | Path = "outputs",
              progress: bool = True, command: str | None = None) -> RunOutcome:
    """Execute the stages with papermill; publish the run only if all of them succeed."""
    outputs = Path(outputs).resolve()
    params = params.with_absolute_paths()  # the kernels run in notebooks/: relative paths would not resolve there
    # …nor would a user's `mypkg.models:build` or `mypkg.data:load` that sits in the folder the run was started from
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, [os.getcwd(), *os.environ.get(
        "PYTHONPATH", "").split(os.pathsep)])))
    run_id = run_id or new_run_id(params)
    run_folders.check_writable(outputs)  # a file or a read-only folder is refused before any work
    # the price row is looked up now, in a child (no CUDA context in this process), not after the benchmark
    call_isolated(cost.price_for_this_machine, params, what="price table check")
    staging, final = run_folders.claim(outputs, run_id)
    params = params.with_(run_dir=str(staging))
    values = params.values()
    command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    (staging / "params.yaml").write_text(yaml.safe_dump({k: v for k, v in values.items() if k != "run_dir"},
                                                        sort_keys=False))
    started, stages, error = time.time(), [], None
    try:
        # the runner's own record of the run (each stage's kernel output has its logs/<stage>.*.log); closed
        # before the manifest hashes the folder
        with run_log(staging / "logs" / "run.log"):
            try:
                logger.info(f"run {run_id}: staging in {staging}")
                execute_stages(staging, values, stages, progress)
                render_html(staging / "notebooks" / "06_cost_report.ipynb", staging / "report.html")
            except BaseException as exc:  # said in run.log too, before the file is closed and hashed
                error = failure_of(stages, exc)
                logger.error(f"FAILED: {error}")
                raise
    except BaseException as exc:
        # the folder moves to failed/ next: paths the error names inside it are named where they will be
        error = (error or failure_of(stages, exc)).replace(str(staging), str(outputs / "failed" / run_id))
        for record in stages:
            if record.get("error"):
                record["error"] = record["error"].replace(str(staging), str(outputs / "failed" / run_id))
        note = ""
        if isinstance(exc, RunStopped):  # before hashing: nothing may still be writing into the run
            end_children()
        try:
            write_manifest(staging, run_id, "failed", params, stages, started, command, error)
        except OSError as e:  # a full disk must not turn the failure report into a second failure
            note = f" (its manifest could not be written: {e.strerror or e})"
        failed_dir, moved = run_folders.keep_failed(staging, outputs, run_id)
        logger.error(f"the executed notebooks are kept as the log in {failed_dir}{moved}{note}")
        if isinstance(exc, KeyboardInterrupt):
            raise
        return RunOutcome("failed", failed_dir, stages, error)
    write_manifest(staging, run_id, "succeeded", params, stages, started, command)
    final, clash = run_folders.publish(staging, final)
    if clash:
        logger.error(f"FAILED: {clash}")
        return RunOutcome("failed", final, stages, clash)
    text, priced = headline(final)
    digest = sha256_file(final / "manifest.json")
    logger.info(f"run {run_id} succeeded in {time.time() - started:.1f} s: {final / 'report.html'}")
    (logger.info if priced else logger.warning)(text)
    logger.info(f"manifest sha256 {digest}")
    logger.info(f"check it: scaleproof verify {final} --manifest-sha256 {digest}")
    if params.deploy_repo:
        try:
            logger.info(f"08_deploy into {params.deploy_repo} …")
            executed = deploy_notebook(final, Path(params.deploy_repo), progress)
            logger.info(f"08_deploy done: {executed}")
        except Exception as exc:  # the run stands, published and verifiable; only its deploy failed
            error = f"08_deploy failed: {describe_failure(exc)}"
            logger.error(f"FAILED: {error}")
            logger.error(f"the run itself is published in {final}")
            return RunOutcome("failed", final, stages, error, priced=priced)
    return RunOutcome("succeeded", final, stages, priced=priced)


def deploy_notebook(run_dir: Path, repo: Path, progress: bool = False) -> Path:
    """08_deploy executed by papermill for a published run; the executed notebook is kept in the repository
    (`notebooks/<run_id>.ipynb`, rendered beside it as HTML) as the record of that deploy."""
    src = paths.notebooks_dir() / "08_deploy.ipynb"
    out_nb = repo / "notebooks" / f"08_deploy-{run_dir.name}.ipynb"
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    execute_notebook(src, out_nb, {"run_dir": str(run_dir), "deploy_repo": str(repo)}, progress)
    render_html(out_nb, out_nb.with_suffix(".html"))
    return out_nb


def headline(run_dir: Path) -> tuple[str, int]:
    """The run's result in one line, on the hardware it was measured on, and how many engines were priced."""
    cost = json.loads(paths.result_path(run_dir, "06_cost_report").read_text())
    env = json.loads((run_dir / "manifest.json").read_text())["environment"]
    hardware = (env.get("gpu") or {}).get("name") or f"{env['cpu']['model']} ({env['cpu']['usable_cores']} cores)"
    engines = cost["engines"]
    if not engines:
        why = "; ".join(f"{x['engine']}: {x['reason']}" for x in cost["excluded"])
        return f"NO ENGINE COULD BE PRICED on {hardware}: {why}", 0
    best = next(e for e in engines if e["engine"] == cost["best"])
    base = next((e for e in engines if e["baseline"]), None)
    versus = f", {best['speedup_vs_baseline']:.2f}x the {base['engine']} baseline" \
        if base and best is not base and best.get("speedup_vs_baseline") else \
        "" if base else " (the baseline could not be priced: no speed-up is claimed)"
    label = "EXPLORATORY, NOT PRICED: " if cost.get("exploratory") else ""
    a = cost.get("assumptions") or {}
    tie = f"; {cost['best_tie']['words']}" if cost.get("best_tie") else ""
    # the fleet's cost over what it serves is what a budget pays; the unit cost at the target utilization is its floor
    fleet = (f"; fleet cost per 1M {best['fleet_usd_per_1m']:.4g} USD ({best['instances']} instances for the peak, "
             f"N+{a.get('redundancy', 0)}, over the traffic they serve), floor" if "fleet_usd_per_1m" in best else ";")
    return (f"{label}on {hardware}: {best['engine']} sustains {best['qps']:,.0f} queries/s at P99 {best['p99_ms']:.2f} ms"
            f"{versus}{fleet} {best['usd_per_1m']:.4g} USD per 1M inferences at "
            f"{a.get('target_utilization', 0):.0%} utilization{tie}"), len(engines)


def run_from_file(params_file: str | Path, overrides: dict[str, Any] | None = None, **kw: Any) -> RunOutcome:
    """`scaleproof run --params FILE` from Python; raises StageFailed if a stage failed."""
    outcome = run_chain(Params.from_yaml(params_file, overrides), **kw)
    if not outcome.ok:
        raise StageFailed(f"{outcome.error}; log: {outcome.run_dir}")
    return outcome
