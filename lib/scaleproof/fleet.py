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

import datetime as dt
import re
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import hardware, paths, report
from .config import Params
from .errors import ArtifactError, ParamsError
from .provenance import read_json, sha256_file, write_json

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


def is_url(location: str) -> bool:
    return "://" in location


def run_member(values: dict[str, Any], gpu_type: str, fleet_location: str) -> dict[str, Any]:
    """Body of one Ray task: the chain on this node, its run under `<fleet>/runs/<gpu_type>`."""
    import ray

    from .pipeline import run_chain

    started = time.time()
    node_id = ray.get_runtime_context().get_node_id()
    params = Params.parse(values)
    with tempfile.TemporaryDirectory(prefix="scaleproof-fleet-") as tmp:
        outputs = Path(tmp) if is_url(fleet_location) else Path(fleet_location) / "runs"
        outcome = run_chain(params, run_id=gpu_type, outputs=outputs, progress=False,
                            command=f"scaleproof fleet (member {gpu_type})", log=lambda _: None)
        rel = outcome.run_dir.relative_to(outputs).as_posix()
        manifest = outcome.run_dir / "manifest.json"
        digest = sha256_file(manifest) if manifest.is_file() else None
        if is_url(fleet_location):  # upload the finished run; the node-local copy goes with tmp
            import fsspec

            fs, root = fsspec.core.url_to_fs(fleet_location)
            fs.put(str(outcome.run_dir), f"{root}/runs/{rel}", recursive=True)
    return asdict(Member(gpu_type=gpu_type, status=outcome.status, run=f"runs/{rel}", node_id=node_id,
                         hostname=socket.gethostname(), device_slug=hardware.device_slug(),
                         seconds=round(time.time() - started, 1), error=outcome.error, manifest_sha256=digest))


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


def _url_exists(url: str) -> bool:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    return fs.exists(root)


ADDRESS_TIMEOUT_S = 5.0


def check_reachable(address: str, timeout_s: float = ADDRESS_TIMEOUT_S) -> None:
    """Fail in seconds, naming the address, when nothing listens at a `host:port` or `ray://host:port` address
    ("auto" and addresses without a port are left to Ray)."""
    import socket

    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ParamsError(f"cannot reach a Ray cluster at --address {address} within {timeout_s:g} s "
                          f"({e.strerror or e}); `ray status` on the head node prints its address") from None


def new_fleet_id() -> str:
    return f"fleet-{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def run_fleet(params: Params, gpu_types: list[str], outputs: str = "outputs", address: str | None = None,
              fleet_id: str | None = None, timeout_s: float | None = None, log=print) -> dict[str, Any]:
    """One member run per GPU type, on Ray; then the fleet report and manifest. Returns fleet.json."""
    import ray

    if not gpu_types:
        raise ParamsError("--gpus names no GPU type (e.g. --gpus T4,L4,H100)")
    if len(set(gpu_types)) != len(gpu_types):
        raise ParamsError(f"--gpus names a type twice: {gpu_types}")
    fleet_id = fleet_id or new_fleet_id()
    location = f"{outputs.rstrip('/')}/{fleet_id}" if is_url(outputs) else str(Path(outputs).resolve() / fleet_id)
    local_dir = Path(tempfile.mkdtemp(prefix="scaleproof-fleet-")) / fleet_id if is_url(outputs) else Path(location)
    if local_dir.exists() or (is_url(outputs) and _url_exists(location)):  # one fleet per folder, never merged
        raise ParamsError(f"fleet folder {location} exists; choose another --fleet-id")

    started_here = not ray.is_initialized()
    if started_here and address:
        check_reachable(address)  # Ray itself retries a wrong address for many minutes before it gives up
    if started_here:
        # without an address Ray starts on this machine alone, which advertises its own accelerator type
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **({} if address else {"resources": {RESOURCE_PREFIX + local_accelerator_type(): 1}}))
        except (ConnectionError, RuntimeError) as e:
            raise ParamsError(f"cannot reach a Ray cluster at --address {address}: {e}") from None
    try:
        local_dir.mkdir(parents=True)  # after connecting: a failed connection leaves nothing behind
    except FileExistsError:
        if started_here:
            ray.shutdown()
        raise ParamsError(f"fleet folder {location} exists; choose another --fleet-id") from None
    try:
        available = cluster_types()
        log(f"[scaleproof] fleet {fleet_id}: cluster has {available or 'no accelerator types'}")
        task = ray.remote(max_retries=0)(run_member)
        members: dict[str, Member] = {}
        pending: dict[Any, str] = {}
        for t in gpu_types:
            if t not in available:
                members[t] = Member(t, "not run", error=f"no node with {RESOURCE_PREFIX}{t} in the cluster "
                                                        f"(it has: {', '.join(sorted(available)) or 'none'})")
                log(f"[scaleproof] {t}: not run ({members[t].error})")
                continue
            opts = {"resources": {RESOURCE_PREFIX + t: 0.001}, "num_gpus": 1 if available[t]["gpus"] else 0}
            pending[task.options(**opts).remote(params.values(), t, location)] = t
            log(f"[scaleproof] {t}: scheduled on a node with {RESOURCE_PREFIX}{t}")
        deadline = None if timeout_s is None else time.time() + timeout_s
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.time())
            done, _ = ray.wait(list(pending), num_returns=1, timeout=left)
            if not done:  # timed out: cancel what is left and say so
                for ref, t in pending.items():
                    ray.cancel(ref, force=True)
                    members[t] = Member(t, "failed", error=f"did not finish within --timeout-s {timeout_s}")
                break
            ref = done[0]
            t = pending.pop(ref)
            try:
                members[t] = Member(**ray.get(ref))
            except Exception as e:  # noqa: BLE001 - a dead node or worker: that member failed, the rest go on
                members[t] = Member(t, "failed", error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
            log(f"[scaleproof] {t}: {members[t].status}" + (f" ({members[t].error})" if members[t].error else ""))
    finally:
        if started_here:
            ray.shutdown()

    if is_url(outputs):  # work on a local mirror of the fleet folder, upload the fleet's own files after
        import fsspec

        fs, root = fsspec.core.url_to_fs(location)
        if fs.exists(f"{root}/runs"):
            fs.get(f"{root}/runs", str(local_dir / "runs"), recursive=True)
    fleet = {"fleet_format": FLEET_FORMAT, "fleet_id": fleet_id, "location": location,
             "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "address": address or "local",
             "requested": gpu_types, "params": {k: v for k, v in params.values().items() if k != "run_dir"},
             "members": [asdict(members[t]) for t in gpu_types]}
    write_json(local_dir / "fleet.json", fleet)
    write_fleet_report(local_dir)
    write_fleet_manifest(local_dir)
    if is_url(outputs):
        for rel in (*FLEET_FILES, "manifest.json"):
            if (local_dir / rel).is_file():
                fs.makedirs(f"{root}/{Path(rel).parent.as_posix()}", exist_ok=True)  # a no-op on object stores
                fs.put(str(local_dir / rel), f"{root}/{rel}")
        shutil.rmtree(local_dir.parent, ignore_errors=True)
    return fleet


def write_fleet_report(fleet_dir: Path) -> Path:
    """fleet_report.json (the comparison as data) and 07_fleet_report executed by papermill, as HTML."""
    import papermill

    from . import fleet_report

    write_json(fleet_dir / "fleet_report.json", fleet_report.summarize(fleet_dir))
    out_nb = fleet_dir / "notebooks" / "07_fleet_report.ipynb"
    out_nb.parent.mkdir(exist_ok=True)
    papermill.execute_notebook(str(paths.notebooks_dir() / "07_fleet_report.ipynb"), str(out_nb),
                               parameters={"fleet_dir": str(fleet_dir)}, progress_bar=False,
                               cwd=str(paths.notebooks_dir()), kernel_name="python3")
    return report.render_html(out_nb, fleet_dir / "fleet_report.html")


def write_fleet_manifest(fleet_dir: Path) -> Path:
    """The fleet's own files with their hashes, and each member run's manifest hash."""
    fleet = read_json(fleet_dir / "fleet.json")
    files = {rel: {"sha256": sha256_file(fleet_dir / rel)} for rel in FLEET_FILES if (fleet_dir / rel).is_file()}
    members = [{"gpu_type": m["gpu_type"], "status": m["status"], "run": m["run"],
                "manifest_sha256": m["manifest_sha256"]} for m in fleet["members"]]
    return write_json(fleet_dir / "manifest.json", {"fleet_format": FLEET_FORMAT, "fleet_id": fleet["fleet_id"],
                                                   "files": files, "members": members})


def verify_fleet(fleet_dir: str | Path) -> tuple[list[str], dict[str, int]]:
    """Problems in a fleet folder: its own files, each member's manifest hash, and each member run."""
    from .audit import changed_files, verify_run

    fleet_dir = Path(fleet_dir)
    try:
        manifest = read_json(fleet_dir / "manifest.json")
    except FileNotFoundError:
        raise ArtifactError(f"{fleet_dir} has no manifest.json: it is not a scaleproof fleet folder") from None
    problems = changed_files(fleet_dir, manifest["files"])
    checked = {"artifacts": len(manifest["files"]), "claims": 0, "members": 0}
    for m in manifest["members"]:
        if m["status"] != "succeeded":
            continue
        run = fleet_dir / m["run"]
        if not (run / "manifest.json").is_file() or sha256_file(run / "manifest.json") != m["manifest_sha256"]:
            problems.append(f"{m['run']}/manifest.json: missing or changed (fleet manifest has its sha256)")
            continue
        member_problems, member_checked = verify_run(run)
        problems += [f"{m['run']}: {p}" for p in member_problems]
        checked["artifacts"] += member_checked["artifacts"]
        checked["claims"] += member_checked["claims"]
        checked["members"] += 1
    return problems, checked
