"""`scaleproof` command line: run the chain, list parameters."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import ScaleproofError


def cmd_run(args: argparse.Namespace) -> int:
    from .config import Params, parse_override
    from .pipeline import run_chain
    from .store import is_url

    overrides = dict(parse_override(s) for s in args.set)
    params = Params.from_yaml(args.params, overrides)  # every parameter checked before any work
    if is_url(args.outputs):
        return run_to_url(params, args)
    outcome = run_chain(params, run_id=args.run_id, outputs=args.outputs, progress=not args.quiet)
    return run_exit_code(outcome)


def run_exit_code(outcome) -> int:
    if not outcome.ok:
        return 1
    return 3 if outcome.priced == 0 else 0  # a batch of runs must notice a run that priced nothing


def run_to_url(params, args: argparse.Namespace) -> int:
    """The run made in a local folder, then uploaded (published or failed) to `--outputs` URL/<id>. The local
    copy is removed only once the upload succeeded; otherwise the error names where it is kept."""
    import shutil
    import tempfile
    from pathlib import Path

    from .errors import ParamsError
    from .pipeline import run_chain
    from .store import Store

    try:  # the URL is checked before any work: a bad one must not cost a run
        store = Store(args.outputs)
        store.exists()
    except Exception as e:  # noqa: BLE001 - a missing fsspec backend, credentials, a malformed URL
        raise ParamsError(f"--outputs {args.outputs}: cannot reach it ({type(e).__name__}: {e})") from None
    if args.run_id:
        taken = [rel for rel in (args.run_id, f"failed/{args.run_id}") if store.exists(rel)]
        if taken:
            raise ParamsError(f"{store.child(taken[0])} exists already: choose another --run-id")
    local = Path(tempfile.mkdtemp(prefix="scaleproof-run-"))
    try:
        outcome = run_chain(params, run_id=args.run_id, outputs=local, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"[scaleproof] interrupted: nothing uploaded; what finished is kept in {local}", flush=True)
        raise
    rel = outcome.run_dir.relative_to(local.resolve()).as_posix()
    if rel.startswith(".staging/"):  # a run that could not even be moved to failed/: failed all the same
        rel = f"failed/{outcome.run_dir.name}"
    try:
        store.put(outcome.run_dir, rel)
    except Exception as e:  # noqa: BLE001 - the run is not lost: it stays here
        raise ScaleproofError(f"upload to {store.child(rel)} failed ({type(e).__name__}: {e}); the run is kept "
                              f"in {outcome.run_dir}") from None
    shutil.rmtree(local, ignore_errors=True)
    print(f"[scaleproof] uploaded to {store.child(rel)}; the local copy in {local} is removed (the paths above "
          "were in it): to verify, download the run and `scaleproof verify` that folder", flush=True)
    return run_exit_code(outcome)


def cmd_params(args: argparse.Namespace) -> int:
    from .config import describe

    rows = describe()
    if args.markdown:
        print("| parameter | type | default | meaning |\n| --- | --- | --- | --- |")
        for r in rows:
            meaning = (r["help"] + (f" (range {r['range']})" if "range" in r else "")).replace("|", "\\|")
            print(f"| `{r['name']}` | {r['type']} | `{r['default']}` | {meaning} |")
    else:
        for r in rows:
            print(f"{r['name']:<20} {r['type']:<14} {r['default']!s:<22} {r['help']}"
                  + (f" (range {r['range']})" if "range" in r else ""))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .audit import verify_run
    from .fleet import verify_fleet
    from .triton_repo import verify_repo

    is_fleet = (Path(args.run_dir) / "fleet.json").is_file()
    if (Path(args.run_dir) / "deploy.json").is_file():
        problems, checked = verify_repo(args.run_dir)
    else:
        problems, checked = (verify_fleet if is_fleet else verify_run)(args.run_dir, args.manifest_sha256)
    if problems:
        print(f"FAILED: {len(problems)} problem(s) in {args.run_dir}")
        for p in problems:
            print(f"  - {p}")
        return 1
    members = f" in {checked['members']} member runs and the fleet's own files" if is_fleet else ""
    print(f"OK: {checked['artifacts']} artifacts match their manifests{members}; {checked['claims']} claims match "
          "their sources")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from .k8s_manifests import deploy_with_manifests

    doc, manifests = deploy_with_manifests(args.run_dir, args.repo, args.claim, args.image)
    for s in doc.get("skipped", []):
        print(f"  not deployed: {s['engine']} ({s['reason']})")
    print(f"deployed into {args.repo}; Kubernetes objects in {manifests}; check it: scaleproof verify {args.repo}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from .triton_repo import rollback

    version = rollback(args.repo, args.model, args.to)
    print(f"{args.model}: version {version} pinned; Triton (explicit model control) serves it after a restart or "
          f"POST /v2/repository/models/{args.model}/load")
    return 0


def cmd_serve_bench(args: argparse.Namespace) -> int:
    from . import served

    results = served.serve_bench(args.run_dir, args.repo, args.model, triton_metrics_port=args.triton_metrics_port,
                                 in_process_metrics_port=args.in_process_metrics_port)
    print(served.summary(results))
    print(f"details: {args.repo}/served/<model>.json (LoadGen logs and the server's log beside it)")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .run_folders import clean

    found = clean(Path(args.outputs), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for s in found:
        owner = f"owner pid {s.owner} is not running" if s.owner else "no owner recorded"
        print(f"{verb} {s.path} ({owner})")
    print(f"{len(found)} staging folder(s) of runs that are no longer alive; live and published runs untouched")
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    from .config import Params, parse_override
    from .fleet import local_accelerator_type, run_fleet
    from .stop_signals import stop_on_signals

    overrides = dict(parse_override(s) for s in args.set)
    params = Params.from_yaml(args.params, overrides)  # checked before Ray starts
    gpus = [g.strip() for g in (args.gpus or local_accelerator_type()).split(",") if g.strip()]
    with stop_on_signals():  # SIGTERM stops and records the members as Ctrl-C does
        fleet = run_fleet(params, gpus, outputs=args.outputs, address=args.address, fleet_id=args.fleet_id,
                          timeout_s=args.timeout_s)
    ok = [m for m in fleet["members"] if m["status"] == "succeeded"]
    print(f"fleet {fleet['fleet_id']}: {len(ok)} of {len(gpus)} GPU types succeeded; report: "
          f"{fleet['location']}/fleet_report.html")
    for m in fleet["members"]:
        print(f"  {m['gpu_type']:<10} {m['status']:<10} {m['run'] or ''} {m['error'] or ''}")
    return 0 if len(ok) == len(gpus) else 1


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .audit import reproduce_run
    from .config import parse_override

    overrides = dict(parse_override(s) for s in args.set)
    new_run, checks = reproduce_run(args.run_dir, args.outputs, args.timing_tolerance, overrides, not args.quiet)
    width = max(len(c.check) for c in checks)
    print(f"{'check':<{width}}  {'kind':<6}  {'original':>22}  {'reproduced':>22}  result")
    for c in checks:
        print(f"{c.check:<{width}}  {c.kind:<6}  {str(c.original)[:22]:>22}  {str(c.reproduced)[:22]:>22}  "
              f"{'ok' if c.ok else 'MISMATCH'}")
    bad = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(bad)} of {len(checks)} checks match (timings within ±{args.timing_tolerance:.0%}); "
          f"new run: {new_run}")
    return 1 if bad else 0


def cmd_cost(args: argparse.Namespace) -> int:
    from .cost import Traffic, compare

    traffic = Traffic(daily_requests=args.peak_qps * 86400, peak_to_average=1.0, utilization=args.utilization,
                      redundancy=args.redundancy)
    r = compare(args.baseline_qps, args.engine_qps, args.usd_per_hour, traffic)
    print(f"peak {args.peak_qps:,.0f} QPS, {args.usd_per_hour} USD/h per accelerator, "
          f"{args.utilization:.0%} planned utilization, N+{args.redundancy}")
    print(f"{'':12}{'QPS each':>10}{'instances':>11}{'annual USD':>14}{'USD per 1M':>12}")
    for label, qps, f in (("baseline", args.baseline_qps, r["baseline"]), ("engine", args.engine_qps, r["engine"])):
        print(f"{label:12}{qps:>10,.0f}{f['instances']:>11}{f['annual_usd']:>14,.0f}{f['usd_per_1m']:>12.4f}")
    print(f"annual savings {r['annual_savings_usd']:,.0f} USD; the same budget serves "
          f"{r['traffic_multiple_same_budget']:.2f}x the traffic")
    return 0


def parse_dims(items: list[str]) -> dict[str, int]:
    """`seq=128` pairs from the command line."""
    from .errors import ParamsError

    dims = {}
    for item in items:
        name, _, size = item.partition("=")
        if not name or not size.isdigit() or int(size) < 1:
            raise ParamsError(f"--dim expects NAME=SIZE with a positive size, got {item!r}")
        dims[name] = int(size)
    return dims


def cmd_build_engine(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from .backends.trt_api import TrtOptions
    from .engine_store import read_sidecar
    from .errors import ParamsError

    opts = TrtOptions(workspace_mb=args.workspace_mb, min_batch=args.min_batch, opt_batch=args.opt_batch,
                      max_batch=args.max_batch, opt_level=args.opt_level, hardware_compat=args.hardware_compat,
                      version_compatible=args.version_compatible, weak_typing_fallback=not args.no_weak_fallback,
                      cuda_graph=not args.no_cuda_graph, timing_cache_dir=args.timing_cache_dir or "")
    from .backends import tensorrt as trt_backend

    with tempfile.TemporaryDirectory() as tmp:
        inputs = trt_backend.inputs_for_onnx(Path(args.model), args.precision, args.max_batch, Path(tmp),
                                             dims=parse_dims(args.dim))
        for shape in inputs.io.sample_shapes().values():
            opts.profile(shape)  # a bad batch range is refused before TensorRT is needed
        try:
            import tensorrt  # noqa: F401
        except ImportError as e:
            raise ParamsError(f"build-engine needs TensorRT ({e}; pip install tensorrt) and a CUDA GPU") from None
        sidecar = trt_backend.build(inputs, args.precision, Path(args.gpu_store), Path(args.model).name, options=opts)
    sc = read_sidecar(sidecar)
    layers = sc.extra.get("layers", {})
    print(f"built {sidecar.parent / sc.engine_file} for {sc.device_name} (compute capability {sc.compute_capability}), "
          f"TensorRT {sc.backend_version}, {sc.extra.get('typing')}; {layers.get('onnx_nodes')} ONNX nodes -> "
          f"{layers.get('engine_layers')} engine layers ({layers.get('fused_layers')} fused); sidecar {sidecar}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="scaleproof", description="Export, calibrate, build, validate, benchmark and "
                                 "price a PyTorch model on this machine, as a reproducible papermill run.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the six stage notebooks into outputs/<run_id>/",
                         description="Run the chain with papermill. The run is published to OUTPUTS/RUN_ID only "
                                     "if every stage succeeds; a failed run goes to OUTPUTS/failed/RUN_ID. Exit "
                                     "codes: 0 priced, 1 a stage failed, 2 bad parameters, 3 published but no engine "
                                     "could be priced.")
    run.add_argument("--params", required=True, metavar="FILE.yaml", help="parameter profile, e.g. params/default.yaml")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="override one parameter (value read as YAML); repeatable")
    run.add_argument("--run-id", default=None, help="name of the run folder (default: time, model and a random tag)")
    run.add_argument("--outputs", default="outputs", help="folder that holds runs, or an fsspec URL (s3://bucket/runs) "
                                                          "the finished run is uploaded to (default: outputs)")
    run.add_argument("--quiet", action="store_true", help="no per-cell progress bars")
    run.set_defaults(func=cmd_run)

    ver = sub.add_parser("verify", help="re-hash a run (or a fleet) against its manifest and check every claim",
                         description="Fails, naming each problem, if any artifact changed, is missing or was added, or "
                                     "if a claim in the report differs from the file it cites.")
    ver.add_argument("run_dir", help="a run folder, e.g. outputs/<run_id>, or a fleet folder")
    ver.add_argument("--manifest-sha256", metavar="HEX", default=None,
                     help="the manifest's sha256 that `scaleproof run` printed: a changed manifest is then caught too")
    ver.set_defaults(func=cmd_verify)

    rep = sub.add_parser("reproduce", help="re-run a run's parameters into a new run and compare the results",
                         description="Non-timing results (hashes of the ONNX and Q/DQ models and of the calibration "
                                     "data, accuracy, agreement) must match exactly; timings within a tolerance.")
    rep.add_argument("run_dir", help="the run folder to reproduce")
    rep.add_argument("--outputs", default=None, help="where the new run goes (default: beside the original)")
    rep.add_argument("--timing-tolerance", type=float, default=0.5,
                     help="relative difference accepted for timing results (default 0.5: shared machines are noisy)")
    rep.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="change a parameter for the reproduction (to see what it changes); repeatable")
    rep.add_argument("--quiet", action="store_true", help="no per-cell progress bars")
    rep.set_defaults(func=cmd_reproduce)

    cost = sub.add_parser("cost", help="the cost model alone, on capacities you measured elsewhere",
                          description="Accelerators needed and annual cost for a peak load, before and after.")
    cost.add_argument("--baseline-qps", type=float, required=True, help="baseline QPS per accelerator at the P99 SLA")
    cost.add_argument("--engine-qps", type=float, required=True, help="optimized QPS per accelerator at the P99 SLA")
    cost.add_argument("--peak-qps", type=float, required=True, help="peak load to serve, queries per second")
    cost.add_argument("--usd-per-hour", type=float, required=True, help="price of one accelerator per hour")
    cost.add_argument("--utilization", type=float, default=0.7, help="planned utilization at peak (default 0.7)")
    cost.add_argument("--redundancy", type=int, default=1, help="spare accelerators, N+R (default 1)")
    cost.set_defaults(func=cmd_cost)

    flt = sub.add_parser("fleet", help="run the chain once per GPU type on a Ray cluster, then the fleet report",
                         description="One Ray task per GPU type, each scheduled only on a node advertising "
                                     "accelerator_type:<TYPE>, each running the usual chain there; a type with no "
                                     "node is reported as not run. Exit 0 only if every type succeeded.")
    flt.add_argument("--params", required=True, metavar="FILE.yaml", help="parameter profile every member runs")
    flt.add_argument("--gpus", default=None, metavar="T4,L4,H100",
                     help="comma-separated accelerator types (default: this machine's own type, or CPU)")
    flt.add_argument("--address", default=None, help="Ray cluster address, e.g. auto or ray://head:10001 "
                                                      "(default: a local Ray on this machine alone)")
    flt.add_argument("--outputs", default="outputs", help="shared storage for the fleet folder: a path every node "
                                                          "sees, or an fsspec URL such as s3://bucket/runs")
    flt.add_argument("--fleet-id", default=None, help="name of the fleet folder (default: time and a random tag)")
    flt.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="override one parameter for every member (value read as YAML); repeatable")
    flt.add_argument("--timeout-s", type=float, default=None,
                     help="stop members still running after this many seconds and report them failed (default: "
                          "the profile's member_timeout_s, else derived from its measurement budget)")
    flt.set_defaults(func=cmd_fleet)

    dep = sub.add_parser("deploy", help="write a run's validated, priced engines into a Triton model repository "
                                        "(a new version per model) with Kubernetes objects for its GPU type")
    dep.add_argument("run_dir", help="a published run folder (it must pass verify)")
    dep.add_argument("--repo", required=True, help="the model repository folder (created; earlier versions are kept)")
    dep.add_argument("--claim", default="triton-models",
                     help="PersistentVolumeClaim holding the repository in the cluster (default: triton-models)")
    dep.add_argument("--image", default=None, help="Triton server image (default: the one k8s_manifests names)")
    dep.set_defaults(func=cmd_deploy)

    rb = sub.add_parser("rollback", help="pin a model of a Triton repository written by deploy to an earlier version")
    rb.add_argument("repo", help="the model repository folder")
    rb.add_argument("model", help="the model's name (its folder in the repository)")
    rb.add_argument("--to", type=int, default=None, help="version to serve (default: the one before the pinned one)")
    rb.set_defaults(func=cmd_rollback)

    srv = sub.add_parser("serve-bench", help="serve a run's deployed ONNX Runtime models with a real Triton server on "
                                             "this CPU: outputs checked, Server peak served vs in process",
                         description="Starts Triton (nvidia-pytriton's server, in the environment `make serve-env` "
                                     "makes) for each ONNX Runtime model the run deployed into REPO, compares its "
                                     "answers on the validation samples with the run's engine, and measures the "
                                     "confirmed Server peak at the run's P99 SLA with LoadGen over gRPC and, with "
                                     "the same method, in process. Writes REPO/served/<model>.json.")
    srv.add_argument("run_dir", help="the run whose engines were deployed (scaleproof deploy RUN --repo REPO)")
    srv.add_argument("--repo", required=True, help="the model repository the run was deployed into")
    srv.add_argument("--model", default=None, help="only this model of the repository (default: every ONNX Runtime "
                                                    "model of the run at its pinned version)")
    srv.add_argument("--triton-metrics-port", type=int, default=None,
                     help="Triton's Prometheus metrics port, for a Prometheus scraping it (default: a free port)")
    srv.add_argument("--in-process-metrics-port", type=int, default=None,
                     help="export the in-process batcher's counters (Triton's names) on this port while it is "
                          "measured (default: none)")
    srv.set_defaults(func=cmd_serve_bench)

    eng = sub.add_parser("build-engine", help="build one TensorRT engine from an ONNX file into a per-GPU store",
                         description="trtexec-like: parse MODEL.onnx, build a strongly typed TensorRT engine for this "
                                     "GPU and store it with its sidecar under GPU_STORE/<gpu-slug>/. INT8 needs a Q/DQ "
                                     "model; an FP32 model asked for FP16 is converted to an FP16 model first.")
    eng.add_argument("model", metavar="MODEL.onnx", help="the ONNX model (FP32, FP16, or Q/DQ for INT8)")
    eng.add_argument("--precision", required=True, choices=["fp32", "fp16", "int8"], help="engine precision")
    eng.add_argument("--gpu-store", required=True, metavar="DIR", help="engine store; the engine goes to DIR/<gpu-slug>/")
    eng.add_argument("--min-batch", type=int, default=1, help="smallest batch of the optimization profile (default 1)")
    eng.add_argument("--opt-batch", type=int, default=0, help="batch to tune for (default 0: the max batch)")
    eng.add_argument("--max-batch", type=int, default=64, help="largest batch of the optimization profile (default 64)")
    eng.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                     help="size of a named dynamic dimension other than the batch, e.g. --dim seq=128 (repeatable)")
    eng.add_argument("--workspace-mb", type=int, default=4096, help="builder workspace limit in MiB (default 4096)")
    eng.add_argument("--opt-level", type=int, default=3, choices=range(6), help="builder optimization level 0-5 (default 3)")
    eng.add_argument("--hardware-compat", default="none", choices=["none", "ampere_plus", "same_compute_capability"],
                     help="hardware compatibility level (default none: this GPU type only)")
    eng.add_argument("--version-compatible", action="store_true",
                     help="let later TensorRT versions of the same major load the engine")
    eng.add_argument("--no-weak-fallback", action="store_true",
                     help="on TensorRT 10.x, do not retry a failed strongly typed build with FP16/INT8 builder flags")
    eng.add_argument("--no-cuda-graph", action="store_true", help="record that the engine runs without CUDA graphs")
    eng.add_argument("--timing-cache-dir", default=None, help="folder of timing caches (default: the GPU's store folder)")
    eng.set_defaults(func=cmd_build_engine)

    cln = sub.add_parser("clean", help="remove staging folders left by runs that are no longer alive",
                         description="Lists and removes outputs/.staging/<id> folders whose owner process is gone "
                                     "(a killed or crashed run). A live run's folder and published runs are never "
                                     "touched.")
    cln.add_argument("--outputs", default="outputs", help="the runs' root folder (default: outputs)")
    cln.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    cln.set_defaults(func=cmd_clean)

    from .ledger.cli import register as register_ledger

    register_ledger(sub)
    from .prospectus.command import register as register_prospectus

    register_prospectus(sub)
    from .watch import register as register_watch

    register_watch(sub)

    par = sub.add_parser("params", help="list every parameter with its type, default and meaning")
    par.add_argument("--markdown", action="store_true", help="print a Markdown table")
    par.set_defaults(func=cmd_params)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ScaleproofError as e:
        print(f"scaleproof: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # what finished is kept (the command said where); no traceback
        from .stop_signals import stop_of

        stop = stop_of(e)
        print(f"scaleproof: {stop or 'interrupted'}", file=sys.stderr)
        return stop.exit_code if stop else 130  # 143 after SIGTERM, 129 after SIGHUP, as a shell reports them


if __name__ == "__main__":
    sys.exit(main())
