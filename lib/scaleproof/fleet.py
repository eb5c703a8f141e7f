"""Fleet: the same chain run once per GPU type, each on a node of that type, scheduled by Ray.

Ray's scheduler already knows accelerator types: a node with an NVIDIA GPU advertises the resource
`accelerator_type:<TYPE>` (T4, L4, A10G, A100, H100…; KubeRay passes the node's label), and a task
that asks for a sliver of that resource runs only there. Each member task runs the usual runner
(`pipeline.run_chain`: the same notebooks, papermill) on its node and writes its run under the
fleet folder, `runs/<TYPE>/`, on shared storage: a local path every node sees, or an fsspec URL
(the run is made in a node-local folder, then uploaded). A type with no node in the cluster is
reported as not run, at once; a member that fails (a stage raised, the node died) is reported
failed while the others complete. The fleet folder gets its own manifest listing the member runs
and their manifests' hashes, the fleet report (`07_fleet_report`, papermill, rendered to HTML),
and `scaleproof verify` checks all of it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import hardware, paths
from .config import Params
from .errors import ParamsError
from .log import quiet_console
from .presentation.common import render_html
from .provenance import read_json, sha256_file, write_json
from .stop_signals import stop_of
from .store import Store, is_url

logger = logging.getLogger(__name__)

FLEET_FORMAT = 1
RESOURCE_PREFIX = "accelerator_type:"
FLEET_FILES = ("fleet.json", "fleet_report.json", "fleet_report.html", "notebooks/07_fleet_report.ipynb")


def local_accelerator_type() -> str:
    """What this machine would advertise to Ray: its GPU model as Ray names it (H100, A100, T4…), or CPU."""
    gpu = hardware.gpu_info()
    if not gpu:
        return "CPU"
    name = gpu["name"].upper().removeprefix("NVIDIA ").replace("TESLA ", "")
    m = re.search(r"\b(H200|H100|GH200|B200|A100|A10G|A10|L40S|L40|L4|T4|V100)\b", name)
    return m.group(1) if m else hardware.slugify(name)


@dataclass
class Member:
    gpu_type: str
    status: str  # succeeded, failed or not run
    run: str | None = None  # run folder relative to the fleet folder
    node_id: str | None = None
    hostname: str | None = None
    device_slug: str | None = None
    seconds: float | None = None
    error: str | None = None
    manifest_sha256: str | None = None
    code: dict[str, Any] | None = None  # git commit and versions the member ran, from its run's manifest


def run_member(values: dict[str, Any], gpu_type: str, fleet_location: str) -> dict[str, Any]:
    """Body of one Ray task: the chain on this node, its run under `<fleet>/runs/<gpu_type>`."""
    import ray

    from .pipeline import run_chain

    started = time.time()
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    use_shipped_project((context.runtime_env or {}).get("working_dir") and Path.cwd())
    # members never deploy: several would write one repository at once (deploy each member run afterwards)
    params = Params.parse({**values, "deploy_repo": ""})
    with tempfile.TemporaryDirectory(prefix="scaleproof-fleet-") if is_url(fleet_location) else \
            contextlib.nullcontext() as tmp:
        outputs = Path(tmp) if tmp else Path(fleet_location) / "runs"
        set_aside_dead_attempt(outputs, gpu_type)
        with quiet_console():  # the member's progress is in its run's logs/run.log; the driver reports it
            outcome = run_chain(params, run_id=gpu_type, outputs=outputs, progress=False,
                                command=f"scaleproof fleet (member {gpu_type})")
        rel = outcome.run_dir.relative_to(outputs.resolve()).as_posix()  # run_chain resolves it too
        manifest = outcome.run_dir / "manifest.json"
        digest = sha256_file(manifest) if manifest.is_file() else None
        code = {**code_of(read_json(manifest)), "package": str(paths.PACKAGE_DIR)} if manifest.is_file() else None
        if is_url(fleet_location):  # upload the finished run; the node-local copy goes with tmp
            Store(fleet_location).put(outcome.run_dir, f"runs/{rel}")
    return asdict(Member(gpu_type=gpu_type, status=outcome.status, run=f"runs/{rel}", node_id=node_id,
                         hostname=socket.gethostname(), device_slug=hardware.device_slug(),
                         seconds=round(time.time() - started, 1), error=outcome.error, manifest_sha256=digest,
                         code=code))


def move_member_to_failed(runs: Path, gpu_type: str, why: str, failed_name: str | None = None) -> Path | None:
    """A member stopped from outside leaves `runs/.staging/<TYPE>`: move it to `runs/failed/<name>` (default
    `<TYPE>`) with `FAILED.txt` saying why, as a member whose stage failed does itself. None if nothing is left."""
    from .run_folders import keep_failed, release

    staging = runs / ".staging" / gpu_type
    if not staging.is_dir():
        return None
    (staging / "FAILED.txt").write_text(why + "\n")
    release(staging)
    return keep_failed(staging, runs, failed_name or gpu_type)[0]


def set_aside_dead_attempt(outputs: Path, gpu_type: str) -> Path | None:
    """A retried member finds the staging folder its dead attempt left: move it to `failed/<TYPE>.attempt-N`
    (its log is kept) so this attempt starts from a clean member folder."""
    taken = [int(p.name.rsplit("-", 1)[1]) for p in (outputs / "failed").glob(f"{gpu_type}.attempt-*")
             if p.name.rsplit("-", 1)[1].isdigit()] if (outputs / "failed").is_dir() else []
    n = max(taken, default=0) + 1  # never a name in use: keep_failed would replace that folder
    return move_member_to_failed(outputs, gpu_type, "this attempt died (node or worker lost); Ray started the "
                                 "member again", f"{gpu_type}.attempt-{n}")


def code_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """What code a member ran: its git commit and the versions that decide its figures."""
    env = manifest.get("environment", {})
    packages = env.get("packages", {})
    return {"commit": (env.get("git") or {}).get("commit"), "dirty": (env.get("git") or {}).get("dirty"),
            **{k: packages.get(k) for k in ("scaleproof", "torch", "onnxruntime", "mlcommons-loadgen")}}


# what a member needs of the project besides the package: the notebooks, the profiles, the shipped data
# (weights of the zoo's own models) and `tests`' example models; never runs, caches or environments
SHIP_EXCLUDES = [".git", ".venv", ".whl", "outputs", "lib", "benchmarks", "data/sentence-encoder", "*.pyc",
                 "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"]


def project_runtime_env() -> dict[str, Any]:
    """Ray runtime environment that brings this checkout to every node: the package as a py_module (importable
    before a member's function is unpickled) and the rest of the project as the members' working directory,
    with the checkout's commit (the shipped copy is no git checkout). A worker image needs Python, the
    dependencies and a Jupyter kernel, not the repository; the driver needs the checkout."""
    from .provenance import SHIPPED_GIT_ENV, git_state

    root = paths.PROJECT_DIR
    if not ((root / "notebooks").is_dir() and (root / "pyproject.toml").is_file()):
        raise ParamsError(f"scaleproof fleet ships the project from the checkout it runs from, but {root} is not one "
                          "(no notebooks/ or pyproject.toml): run it from a clone of the repository")
    git = git_state(root)
    shipped = f"{git['commit'] or ''}:{'' if git['dirty'] is None else int(git['dirty'])}"
    return {"py_modules": [str(paths.PACKAGE_DIR)], "working_dir": str(root), "excludes": SHIP_EXCLUDES,
            "env_vars": {SHIPPED_GIT_ENV: shipped}}


def use_shipped_project(working_dir: Path | None) -> None:
    """In a member started with `project_runtime_env`: notebooks and data come from the shipped working
    directory, and the stage kernels import the shipped package, whatever the node has installed."""
    import os

    if not working_dir:
        return
    os.environ["SCALEPROOF_NOTEBOOKS"] = str(working_dir / "notebooks")
    os.environ["SCALEPROOF_DATA"] = str(working_dir / "data")
    shipped = str(paths.PACKAGE_DIR.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(
        filter(None, [shipped, *os.environ.get("PYTHONPATH", "").split(os.pathsep)])))


def member_timeout_s(params: Params) -> float:
    """How long a member may run: the profile's `member_timeout_s`, or else 15 minutes for the stages
    around the benchmark plus twice the longest its LoadGen runs may take (every search run and every
    confirmation step of every engine, with 3 s of set-up each)."""
    if params.member_timeout_s:
        return params.member_timeout_s
    engines = 1 + len(params.precisions) * (1 + len(params.torch_modes))  # baseline; ORT/TensorRT and torch modes
    configs = max(1, len(params.sweep_max_batch) * len(params.sweep_queue_delay_ms))
    searches = configs + max(params.peak_repeats, 3)
    search_s = searches * params.peak_search_runs * (params.loadgen_min_duration_s + 3)
    confirm_s = params.confirm_steps * (max(params.min_priced_duration_s or 30, 5 * params.loadgen_min_duration_s) + 3)
    return 900 + 2 * engines * (search_s + confirm_s)


def probe_storage(location: str, token: str, gpu_type: str) -> dict[str, Any]:
    """On a node of `gpu_type`: read the driver's probe in the fleet folder and write this node's answer."""
    name, answer = f".storage-probe-{token}", f".storage-probe-{token}-{gpu_type}"
    try:
        store = Store(location)
        seen = store.read_text(name) == token
        if seen:
            store.write_text(answer, token)
    except (OSError, ValueError) as e:
        return {"seen": False, "hostname": socket.gethostname(), "detail": f"{type(e).__name__}: {e}"}
    return {"seen": seen, "hostname": socket.gethostname(), "detail": "" if seen else "the probe held other content"}


def _hostname() -> str:
    return socket.gethostname()


def wait_for_types(ray, types: list[str], wait_s: float) -> list[str]:
    """Ask for a sliver of each missing type's resource and wait up to `wait_s` for the tasks to run: the
    request is what makes an autoscaler (KubeRay's included) start a node of that type. Returns the types
    that got a node; the requests of the others are cancelled."""
    task = ray.remote(max_retries=0)(_hostname)
    refs = {task.options(resources={RESOURCE_PREFIX + t: 0.001}, num_gpus=0, num_cpus=0).remote(): t
            for t in types}
    ready, not_ready = ray.wait(list(refs), num_returns=len(refs), timeout=wait_s)
    for ref in not_ready:
        ray.cancel(ref, force=True)
    return [refs[r] for r in ready]


PROBE_TIMEOUT_S = 120.0


def check_shared_storage(ray, location: str, types: dict[str, dict[str, Any]]) -> None:
    """Before any member starts: the driver writes a probe in the fleet folder, a task on a node of each type
    reads it and answers in the same folder, and the driver reads the answers. Storage a node cannot see (a
    node-local `outputs/`, an in-memory filesystem) is refused here, not after every member has run."""
    token = secrets.token_hex(8)
    store = Store(location)
    problems = []
    try:
        try:
            store.write_text(f".storage-probe-{token}", token)
        except Exception as e:  # noqa: BLE001 - any storage error is the user's to fix, said in one line
            raise ParamsError(f"--outputs {location}: cannot write there ({type(e).__name__}: {e})") from None
        task = ray.remote(max_retries=0)(probe_storage)
        refs = {t: task.options(resources={RESOURCE_PREFIX + t: 0.001}, num_gpus=0, num_cpus=0).remote(location, token, t)
                for t in types}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)  # all at once
        for t, ref in refs.items():
            if ref not in ready:
                ray.cancel(ref, force=True)
                problems.append(f"{t}: no answer within {PROBE_TIMEOUT_S:g} s")
                continue
            try:
                r = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - e.g. the runtime environment failed to set up on that node
                problems.append(f"{t}: the probe task failed ({failure_words(e)})")
                continue
            seen = r["seen"] and store.exists(f".storage-probe-{token}-{t}")
            if not seen:
                problems.append(f"{t} (host {r['hostname']}): " + (r["detail"] or "its answer did not reach the driver"))
    finally:
        with contextlib.suppress(Exception):
            store.remove(f".storage-probe-{token}*")
    if problems:
        raise ParamsError(f"--outputs {location} is not storage the driver and every node share: "
                          + "; ".join(problems) + ". Use a path every node mounts (NFS, a shared volume) or an "
                          "fsspec URL all of them can reach (s3://bucket/prefix, gs://…)")


def keep_failed_member(local_dir: Path, gpu_type: str, why: str) -> str | None:
    """`move_member_to_failed` in the fleet folder; returns the member's new place relative to it."""
    where = move_member_to_failed(local_dir / "runs", gpu_type, why)
    return where.relative_to(local_dir).as_posix() if where else None


def cluster_types() -> dict[str, dict[str, Any]]:
    """accelerator type -> {nodes, gpus per node} of the alive nodes of the connected Ray cluster."""
    import ray

    types: dict[str, dict[str, Any]] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        for key in node["Resources"]:
            if key.startswith(RESOURCE_PREFIX):
                t = types.setdefault(key[len(RESOURCE_PREFIX):], {"nodes": 0, "gpus": 0.0})
                t["nodes"] += 1
                t["gpus"] = max(t["gpus"], node["Resources"].get("GPU", 0.0))
    return types


ADDRESS_TIMEOUT_S = 5.0


def check_reachable(address: str, timeout_s: float = ADDRESS_TIMEOUT_S) -> None:
    """Fail in seconds, naming only the address given, unless a Ray head of the kind the address names answers
    there: `host:port` must be a head's GCS (Ray's first call, GetClusterId), `ray://host:port` its Ray Client
    server (a PING). Something else listening there (an HTTP server, the client port given without ray://) is
    refused here; Ray itself would retry for minutes without answering signals. "auto" and addresses without a
    port are left to Ray."""
    import grpc

    client = address.startswith("ray://")
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ParamsError(f"cannot reach a Ray cluster at --address {address} within {timeout_s:g} s "
                          f"({e.strerror or e}); `ray status` on the head node prints its address") from None
    kind = "Ray Client server (ray://host:10001)" if client else "Ray head's GCS address (host:6379)"
    with grpc.insecure_channel(hostport) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
            if client:
                from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

                ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
                    ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING), timeout=timeout_s,
                    metadata=ray_auth_metadata())
            else:
                from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

                gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                    gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s, metadata=ray_auth_metadata())
        except grpc.FutureTimeoutError:
            raise ParamsError(f"--address {address}: something listens there but does not speak gRPC (Ray's "
                              f"protocol) within {timeout_s:g} s, so it is not a {kind}; `ray status` on the head "
                              "node prints its address") from None
        except grpc.RpcError as e:
            other = (f"; if it is a Ray Client port, give ray://{hostport}" if not client else
                     "; if it is a head's GCS port, give it without ray://")
            raise ParamsError(f"--address {address} answers gRPC but not as a {kind} ({e.code().name}){other}") \
                from None


def ray_auth_metadata() -> tuple:
    """Ray's token header where a token exists (RAY_AUTH_TOKEN, or ~/.ray/auth_token that `ray start` may write), so
    a head with token authentication answers the reachability check as it answers Ray; empty where there is none."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "") or Path.home() / ".ray" / "auth_token")
    if not token and path.is_file():
        token = path.read_text(encoding="utf-8").strip()
    return (("authorization", f"Bearer {token}"),) if token else ()


def new_fleet_id() -> str:
    return f"fleet-{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def run_fleet(params: Params, gpu_types: list[str], outputs: str = "outputs", address: str | None = None,
              fleet_id: str | None = None, timeout_s: float | None = None, log=None) -> dict[str, Any]:
    """One member run per GPU type, on Ray; then the fleet report and manifest. Returns fleet.json. `log` receives
    each progress line (default: the package logger)."""
    try:
        import ray
    except ImportError:
        raise ParamsError("scaleproof fleet needs Ray: pip install -e '.[fleet]' (make setup installs it)") from None

    log = log or logger.info
    if params.deploy_repo:  # members would write one repository at once: each member run is deployed afterwards
        log(f"deploy_repo={params.deploy_repo} is not used by a fleet: deploy each member run with scaleproof deploy")

    if not gpu_types:
        raise ParamsError("--gpus names no GPU type (e.g. --gpus T4,L4,H100)")
    if len(set(gpu_types)) != len(gpu_types):
        raise ParamsError(f"--gpus names a type twice: {gpu_types}")
    fleet_id = fleet_id or new_fleet_id()
    location = f"{outputs.rstrip('/')}/{fleet_id}" if is_url(outputs) else str(Path(outputs).resolve() / fleet_id)
    local_dir = Path(tempfile.mkdtemp(prefix="scaleproof-fleet-")) / fleet_id if is_url(outputs) else Path(location)
    if local_dir.exists() or (is_url(outputs) and Store(location).exists()):  # one fleet per folder, never merged
        raise ParamsError(f"fleet folder {location} exists; choose another --fleet-id")

    started_here = not ray.is_initialized()
    if started_here and address:
        check_reachable(address)  # Ray itself retries a wrong address for many minutes before it gives up
    if started_here:
        # without an address Ray starts on this machine alone, which advertises its own accelerator type
        try:
            # the project travels with the job (Ray ships local folders per job only, not per task); a caller
            # that started Ray itself chooses its own runtime_env (see project_runtime_env)
            on_sigterm = signal.getsignal(signal.SIGTERM)
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env=project_runtime_env(),
                     **({} if address else {"resources": {RESOURCE_PREFIX + local_accelerator_type(): 1}}))
            if threading.current_thread() is threading.main_thread() and on_sigterm is not None:
                signal.signal(signal.SIGTERM, on_sigterm)  # ray.init puts sys.exit there; ours records the members
        except (ConnectionError, RuntimeError) as e:
            raise ParamsError(f"cannot reach a Ray cluster at --address {address}: {e}") from None
    try:
        local_dir.mkdir(parents=True)  # after connecting: a failed connection leaves nothing behind
    except FileExistsError:
        if started_here:
            ray.shutdown()
        raise ParamsError(f"fleet folder {location} exists; choose another --fleet-id") from None
    members: dict[str, Member] = {}
    pending: dict[Any, str] = {}
    record = {"fleet_format": FLEET_FORMAT, "fleet_id": fleet_id, "location": location,
              "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "address": address or "local",
              "requested": gpu_types, "params": {k: v for k, v in params.values().items() if k != "run_dir"}}

    def write_record() -> dict[str, Any]:
        """fleet.json and the manifest as they stand: written after every member, so an interrupted fleet
        keeps what finished (members still running are listed as such); uploaded too for URL outputs."""
        fleet = {**record, "members": [asdict(members.get(t) or Member(t, "running")) for t in gpu_types]}
        write_json(local_dir / "fleet.json", fleet)
        write_fleet_manifest(local_dir)
        if is_url(outputs):
            upload_fleet_files(local_dir, location)
        return fleet

    try:
        try:
            available = cluster_types()
            log(f"fleet {fleet_id}: cluster has {available or 'no accelerator types'}")
            missing = [t for t in gpu_types if t not in available]
            if missing and params.member_pending_wait_s > 0:
                log(f"waiting up to {params.member_pending_wait_s:g} s for nodes of {', '.join(missing)}")
                if wait_for_types(ray, missing, params.member_pending_wait_s):
                    available = cluster_types()
            to_run = [t for t in gpu_types if t in available]
            for t in gpu_types:
                if t not in available:
                    waited = f" after waiting {params.member_pending_wait_s:g} s" if params.member_pending_wait_s else ""
                    members[t] = Member(t, "not run", error=f"no node with {RESOURCE_PREFIX}{t} in the cluster"
                                        f"{waited} (it has: {', '.join(sorted(available)) or 'none'})")
                    log(f"{t}: not run ({members[t].error})")
            check_shared_storage(ray, location, {t: available[t] for t in to_run})
        except BaseException:  # nothing started: nothing to keep (a ParamsError says why; Ctrl-C says itself)
            shutil.rmtree(local_dir.parent if is_url(outputs) else local_dir, ignore_errors=True)
            raise
        limit = timeout_s if timeout_s is not None else member_timeout_s(params)
        task = ray.remote(max_retries=params.member_retries)(run_member)  # retries: node or worker lost
        try:
            for t in to_run:
                opts = {"resources": {RESOURCE_PREFIX + t: 0.001}, "num_gpus": 1 if available[t]["gpus"] else 0}
                pending[task.options(**opts).remote(params.values(), t, location)] = t
                log(f"{t}: scheduled on a node with {RESOURCE_PREFIX}{t}")
            if pending:
                log(f"members still running {limit:,.0f} s after they were scheduled are stopped and "
                    "reported failed")
            write_record()
            deadline = time.time() + limit
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, deadline - time.time()))
                if not done:  # out of time: stop what is left and say so
                    stop_members(ray, pending, members, local_dir, "failed",
                                 f"did not finish within {limit:,.0f} s (--timeout-s or the profile's "
                                 "member_timeout_s)", write_record)
                    break
                ref = done[0]
                t = pending[ref]
                members[t] = collect(ray, ref, t, local_dir)
                del pending[ref]  # only once recorded: an interrupt before this still stops and records it
                log(f"{t}: {members[t].status}" + (f" ({members[t].error})" if members[t].error else ""))
                write_record()
        except BaseException as e:  # Ctrl-C, or the driver failing: keep what finished, stop and record the rest
            interrupted = isinstance(e, KeyboardInterrupt)
            why = (f"interrupted ({stop_of(e) or 'Ctrl-C'}) before it finished" if interrupted else
                   f"stopped: the fleet driver failed ({type(e).__name__}: {str(e)[:200]})")
            for t in gpu_types:
                if t not in members and t not in pending.values():
                    members[t] = Member(t, "interrupted", error=why)  # never scheduled
            with contextlib.suppress(BaseException):
                stop_members(ray, pending, members, local_dir, "interrupted", why, write_record)
            with contextlib.suppress(BaseException):
                write_record()
            log(f"{'interrupted' if interrupted else 'failed'}: finished members are kept in {location} "
                "(fleet.json, manifest.json)")
            raise
    finally:
        if started_here:
            ray.shutdown()

    try:
        if is_url(outputs):  # work on a local mirror of the fleet folder, upload the fleet's own files after
            Store(location).get("runs", local_dir / "runs")
        fleet = write_record()
        write_fleet_report(local_dir)
        write_fleet_manifest(local_dir)
        if is_url(outputs):
            upload_fleet_files(local_dir, location)
    finally:
        if is_url(outputs):
            shutil.rmtree(local_dir.parent, ignore_errors=True)
    return fleet


def upload_fleet_files(local_dir: Path, location: str) -> None:
    """The fleet's own files from the local mirror to the fleet's URL."""
    store = Store(location)
    for rel in (*FLEET_FILES, "manifest.json"):
        if (local_dir / rel).is_file():
            store.put(local_dir / rel, rel)


def collect(ray, ref, gpu_type: str, local_dir: Path) -> Member:
    """A finished member's record; a member whose node or worker died is failed, its folder kept."""
    try:
        return Member(**ray.get(ref))
    except Exception as e:  # noqa: BLE001 - a dead node or worker: that member failed, the rest go on
        why = failure_words(e)
        return Member(gpu_type, "failed", error=why, run=keep_failed_member(local_dir, gpu_type, why))


def failure_words(e: BaseException) -> str:
    """What failed a member, in one line. A RayTaskError's own first line only names the task and its pid
    ("ray::run_member() (pid=6775, ip=…)"): the member's exception is its `cause`."""
    cause = getattr(e, "cause", None)
    inner = e if cause is None or cause is e else cause
    lines = str(inner).strip().splitlines()
    words = f"{type(inner).__name__}: {lines[0] if lines else ''}"
    return (words if inner is e else f"{words} (raised in the Ray task)")[:300]


def stop_members(ray, pending: dict[Any, str], members: dict[str, Member], local_dir: Path, status: str,
                 why: str, write_record=None) -> None:
    """Cancel the members still running; their partial runs go to `runs/failed/<TYPE>` with the reason. A member
    that finished between the deadline and the cancel keeps its result."""
    for ref in pending:
        ray.cancel(ref, force=True)
    for ref, t in list(pending.items()):
        try:  # wait for the kill, so the member's folder is no longer written when it is moved
            members[t] = Member(**ray.get(ref, timeout=30))  # it finished after all
        except Exception:  # noqa: BLE001 - cancelled or dead: what we expect
            members[t] = Member(t, status, error=why, run=keep_failed_member(local_dir, t, why))
        del pending[ref]
        if write_record:
            write_record()


def write_fleet_report(fleet_dir: Path) -> Path:
    """fleet_report.json (the comparison as data) and 07_fleet_report executed by papermill, as HTML."""
    from . import fleet_report
    from .pipeline import execute_notebook

    write_json(fleet_dir / "fleet_report.json", fleet_report.summarize(fleet_dir))
    out_nb = fleet_dir / "notebooks" / "07_fleet_report.ipynb"
    out_nb.parent.mkdir(exist_ok=True)
    execute_notebook(paths.notebooks_dir() / "07_fleet_report.ipynb", out_nb, {"fleet_dir": str(fleet_dir)})
    return render_html(out_nb, fleet_dir / "fleet_report.html")


def write_fleet_manifest(fleet_dir: Path) -> Path:
    """The fleet's own files with their hashes, and each member run's manifest hash."""
    fleet = read_json(fleet_dir / "fleet.json")
    files = {rel: {"sha256": sha256_file(fleet_dir / rel)} for rel in FLEET_FILES if (fleet_dir / rel).is_file()}
    members = [{"gpu_type": m["gpu_type"], "status": m["status"], "run": m["run"],
                "manifest_sha256": m["manifest_sha256"]} for m in fleet["members"]]
    return write_json(fleet_dir / "manifest.json", {"fleet_format": FLEET_FORMAT, "fleet_id": fleet["fleet_id"],
                                                   "files": files, "members": members})


def verify_fleet(fleet_dir: str | Path, manifest_sha256: str | None = None) -> tuple[list[str], dict[str, int]]:
    """Problems in a fleet folder: its own files, each member's manifest hash, and every member run that has files,
    whatever its recorded status (a status can be edited; the files say what ran). A damaged record is one
    finding naming the file, never a traceback."""
    from .audit import changed_files, read_finding, refused_path, verify_run

    fleet_dir = Path(fleet_dir)
    checked = {"artifacts": 0, "claims": 0, "members": 0}
    problems: list[str] = []
    manifest = read_finding(fleet_dir / "manifest.json", problems, "manifest.json")
    if manifest is None:
        return problems + [f"{fleet_dir} has no readable manifest.json: it is not a verifiable fleet folder"], checked
    missing = [k for k in ("files", "members") if not isinstance(manifest, dict) or k not in manifest]
    if missing or not isinstance(manifest["files"], dict) or not isinstance(manifest["members"], list) \
            or not all(isinstance(m, dict) and {"gpu_type", "status", "run", "manifest_sha256"} <= set(m)
                       for m in manifest["members"]):
        return ["manifest.json: damaged (" + (f"no {', '.join(repr(k) for k in missing)} key" if missing else
                                              "its files or members are not what a fleet manifest holds")
                + "): it is not a verifiable fleet record"], checked
    if manifest_sha256 and (actual := sha256_file(fleet_dir / "manifest.json")) != manifest_sha256.strip().lower():
        problems.append(f"manifest.json: sha256 {actual} is not the {manifest_sha256} printed when the fleet ended "
                        "(the manifest was changed)")
    problems += changed_files(fleet_dir, manifest["files"])
    checked["artifacts"] = len(manifest["files"])
    record = read_finding(fleet_dir / "fleet.json", [], "fleet.json")  # its own hash is checked above
    try:
        said = {m["gpu_type"]: m for m in record["members"]}
    except (TypeError, KeyError):
        said = {}
    listed = {m["gpu_type"] for m in manifest["members"]}
    problems += [f"member {t}: in fleet.json but not in manifest.json" for t in sorted(set(said) - listed)]
    for m in manifest["members"]:
        f = said.get(m["gpu_type"])
        if f is None or (f.get("status"), f.get("run"), f.get("manifest_sha256")) != \
                (m["status"], m["run"], m["manifest_sha256"]):
            problems.append(f"member {m['gpu_type']}: manifest.json says {m['status']!r} ({m['run']}) but fleet.json "
                            f"says {f.get('status') if f else 'nothing'!r}" + ("" if f is None else f" ({f.get('run')})"))
        if m["status"] == "running":  # the driver died before it could record how the member ended
            problems.append(f"member {m['gpu_type']}: still 'running' in the record: the fleet never finished")
    for m in manifest["members"]:
        if not m["run"]:
            continue  # never run (no node of that type): nothing on disk to check
        if why := refused_path(fleet_dir, m["run"]):
            problems.append(f"member {m['gpu_type']}: its run {m['run']!r} {why}")
            continue
        run = fleet_dir / m["run"]
        if not run.is_dir():
            if m["status"] == "succeeded":
                problems.append(f"{m['run']}: missing (the fleet manifest records a succeeded member there)")
            continue
        recorded = m["manifest_sha256"]
        if (run / "manifest.json").is_file() and recorded and sha256_file(run / "manifest.json") != recorded:
            problems.append(f"{m['run']}/manifest.json: changed (fleet manifest has its sha256)")
        elif m["status"] == "succeeded" and not recorded:
            problems.append(f"{m['run']}/manifest.json: no sha256 recorded for a succeeded member")
        member_problems, member_checked = verify_run(run)  # its manifest's hash is compared above
        checked["artifacts"] += member_checked["artifacts"]
        if m["status"] == "succeeded":  # the member runs whose figures the fleet report uses
            checked["claims"] += member_checked["claims"]
            checked["members"] += 1
            problems += [f"{m['run']}: {p}" for p in member_problems]
            continue
        # a member recorded as not succeeded: its files must still be what it wrote, and must not be a complete run
        run_status = (read_finding(run / "manifest.json", [], "") or {}).get("status") \
            if (run / "manifest.json").is_file() else None
        status_only = [p for p in member_problems if not p.startswith("the run's status is ")]
        if run_status == "succeeded" and not status_only:
            problems.append(f"member {m['gpu_type']}: recorded as {m['status']!r} but {m['run']} is a complete run "
                            "that verifies (its figures are hidden by the record)")
        else:  # a failed run: each file it lists must still match its hash
            problems += [f"{m['run']}: {p}" for p in member_problems
                         if ": changed" in p or "symbolic link" in p or "leaves the folder" in p]
    return problems, checked
