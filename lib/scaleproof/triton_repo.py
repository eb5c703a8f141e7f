"""A Triton Inference Server model repository from a run: its validated, priced engines, versioned, with rollback.

Layout (Triton's): `<repo>/<model>/config.pbtxt` and `<repo>/<model>/<version>/<file>`. Each deploy of a
run adds version N+1 of every model it carries and pins it with `version_policy { specific }`; earlier
versions stay, and `rollback` moves the pin back. `<repo>/deploy.json` traces every file to the run it came
from (run id, the run manifest's sha256, the engine's build entry, the file's sha256) and records each
model's pinned version and its config's sha256, so `scaleproof verify <repo>` can check all of it.

What goes in: ONNX Runtime engines as the portable ONNX model they were built from (Triton's onnxruntime
backend optimizes it for the machine it serves on), TensorRT engines as plans per compute capability
(`cc_model_filenames`), PyTorch engines as TorchScript programs for the PyTorch (LibTorch) backend, traced from
the engine's module at its precision (I/O named INPUT__i / OUTPUT__i as that backend expects; `deploy.json`
maps them to the model's names). A compile-mode engine is deployed as the TorchScript of its eager module.
The dynamic batcher gets the configuration the run measured as best for that engine.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from . import paths, stages
from .errors import ArtifactError, ParamsError, ScaleproofError
from .provenance import read_json, sha256_file, write_json
from .record_lock import locked
from .results import BuildResult, BuiltEngine, CostReport, ExportResult, ValidateResult

logger = logging.getLogger(__name__)

DEPLOY_FORMAT = 1
# ONNX TensorProto element types -> Triton data types
ONNX_TO_TRITON = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 5: "TYPE_INT16", 6: "TYPE_INT32", 7: "TYPE_INT64",
                  9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 16: "TYPE_BF16"}
BACKENDS = {"onnxruntime": "onnxruntime", "tensorrt": "tensorrt", "torch": "pytorch"}  # scaleproof -> Triton backend


class NotDeployable(ArtifactError):
    """One engine cannot be written for Triton (e.g. a model that does not trace); the deploy goes on without it."""


def model_name(run_model: str, engine: str) -> str:
    """A Triton model name from the run's model spec and the engine: letters, digits, '-' and '_' only."""
    base = run_model.split(":", 1)[-1].split("/")[-1]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{base}-{engine}").strip("-")


def onnx_signature(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs of an ONNX model as Triton sees them: name, data type, dims (-1 where dynamic)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}

    def spec(v) -> dict[str, Any]:
        t = v.type.tensor_type
        if t.elem_type not in ONNX_TO_TRITON:
            raise ArtifactError(f"{path.name}: {v.name} has ONNX element type {t.elem_type}, which Triton has no type for")
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return {"name": v.name, "data_type": ONNX_TO_TRITON[t.elem_type], "dims": dims}

    return {"inputs": [spec(v) for v in model.graph.input if v.name not in initializers],
            "outputs": [spec(v) for v in model.graph.output]}


def _dims(spec: dict[str, Any], batched: bool) -> str:
    return ", ".join(str(d) for d in (spec["dims"][1:] if batched else spec["dims"]))


def model_config(name: str, backend: str, signature: dict[str, list[dict[str, Any]]], max_batch: int,
                 batcher: dict[str, Any] | None, kind: str, version: int, default_file: str | None = None,
                 cc_files: dict[str, str] | None = None) -> str:
    """config.pbtxt text. Dims leave out the batch dimension (Triton adds it when max_batch_size > 0)."""
    lines = [f'name: "{name}"', f'backend: "{backend}"', f"max_batch_size: {max_batch}"]
    if default_file:
        lines.append(f'default_model_filename: "{default_file}"')
    for key, specs in (("input", signature["inputs"]), ("output", signature["outputs"])):
        lines.append(f"{key} [")
        lines.append(",\n".join(f'  {{ name: "{s["name"]}" data_type: {s["data_type"]} dims: [ {_dims(s, max_batch > 0)} ] }}'
                                for s in specs))
        lines.append("]")
    if batcher:
        preferred = sorted({b for b in (batcher["max_batch"] // 2, batcher["max_batch"]) if 0 < b <= max_batch})
        lines.append("dynamic_batching {")
        lines.append(f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]")
        lines.append(f"  max_queue_delay_microseconds: {round(batcher['max_queue_delay_ms'] * 1000)}")
        lines.append("}")
    lines.append(f"instance_group [ {{ count: 1 kind: {kind} }} ]")
    if cc_files:
        lines.append("cc_model_filenames [")
        lines.append(",\n".join(f'  {{ key: "{cc}" value: "{f}" }}' for cc, f in sorted(cc_files.items())))
        lines.append("]")
    lines.append(f"version_policy: {{ specific: {{ versions: [ {version} ] }} }}")
    return "\n".join(lines) + "\n"


def pin_version(config_text: str, version: int) -> str:
    """The same config with its version_policy pinned to `version`."""
    new, n = re.subn(r"version_policy: \{ specific: \{ versions: \[ \d+ \] \} \}",
                     f"version_policy: {{ specific: {{ versions: [ {version} ] }} }}", config_text)
    if n != 1:
        raise ArtifactError("config.pbtxt has no version_policy written by scaleproof deploy; pin it by hand")
    return new


def deployable(run_dir: Path) -> tuple[list[BuiltEngine], list[dict[str, str]]]:
    """Built engines that passed validation and were priced; the rest with the reason they are left out."""
    built: BuildResult = stages.read_typed(run_dir, "03_build")
    validated: ValidateResult = stages.read_typed(run_dir, "04_validate")
    cost: CostReport = stages.read_typed(run_dir, "06_cost_report")
    passed = {e.engine for e in validated.engines if e.passed}
    priced = {e.engine for e in cost.engines}
    take, skipped = [], []
    for e in built.engines:
        why = ("failed validation" if e.name not in passed else
               "not priced (see the cost report's exclusions)" if e.name not in priced else
               f"no Triton backend for {e.backend} engines" if e.backend not in BACKENDS else "")
        (skipped.append({"engine": e.name, "reason": why}) if why else take.append(e))
    return take, skipped


def example_inputs(run: Path) -> dict:
    """The run's validation inputs (what a TorchScript program is traced and checked with)."""
    from .config import Params
    from .datasets import splits_for
    from .io_spec import ModelIO

    exported: ExportResult = stages.read_typed(run, "01_export")
    params = Params.from_yaml(run / "params.yaml")
    return splits_for(params, ModelIO.model_validate(exported.io), exported.dataset)["val"].x


def read_deploys(repo: Path) -> dict[str, Any]:
    f = repo / "deploy.json"
    if not f.is_file():
        return {"deploy_format": DEPLOY_FORMAT, "deploys": [], "pins": {}, "configs": {}}
    try:
        doc = read_json(f)
    except (OSError, ValueError) as e:  # truncated or not JSON: said in one line, never a traceback
        raise ArtifactError(f"{f} cannot be read as the repository's deploy record ({e}); restore it from a copy") \
            from None
    if not isinstance(doc, dict) or doc.get("deploy_format") != DEPLOY_FORMAT:
        said = doc.get("deploy_format") if isinstance(doc, dict) else None
        raise ArtifactError(f"{f} has deploy_format {said!r}; this version writes {DEPLOY_FORMAT}")
    return doc


def versions_of(model_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()) if model_dir.is_dir() else []


def deploy(run_dir: str | Path, repo: str | Path, log=logger.info) -> dict[str, Any]:
    """Add the run's deployable engines to the repository as new versions, pinned; returns deploy.json."""
    from .audit import verify_run

    run, repo = Path(run_dir).resolve(), Path(repo).resolve()
    if not (run / "manifest.json").is_file():
        raise ParamsError(f"{run} is not a scaleproof run folder (no manifest.json)")
    problems, _ = verify_run(run)
    if problems:  # an engine or result that changed after the run is never deployed
        raise ArtifactError(f"{run} fails verify, nothing deployed: " + "; ".join(problems[:5])
                            + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
    manifest = read_json(run / "manifest.json")
    engines, skipped = deployable(run)
    if not engines:
        raise ArtifactError(f"{run} has no engine to deploy: " + "; ".join(f"{s['engine']}: {s['reason']}" for s in skipped))
    bench = {e.engine: e for e in stages.read_typed(run, "05_benchmark").engines}
    export: ExportResult = stages.read_typed(run, "01_export")
    repo.mkdir(parents=True, exist_ok=True)
    with locked(repo / "deploy.json"):  # a second deploy into this repository waits: versions are never shared
        return deploy_locked(run, repo, manifest, engines, skipped, bench, export, log)


def recorded_versions(doc: dict[str, Any], model: str) -> list[int]:
    return sorted({d["version"] for d in doc.get("deploys", []) if d.get("model") == model})


def next_version(doc: dict[str, Any], model_dir: Path) -> int:
    """One past the highest version ever recorded or on disk: a number deleted by hand is never given again."""
    return max([0, *recorded_versions(doc, model_dir.name), *versions_of(model_dir)]) + 1


def deploy_locked(run: Path, repo: Path, manifest: dict[str, Any], engines: list[BuiltEngine],
                  skipped: list[dict[str, str]], bench: dict, export: ExportResult, log) -> dict[str, Any]:
    doc = read_deploys(repo)
    build_dir = paths.stage_dir(run, "03_build")
    for e in engines:
        name = model_name(export.model, e.name)
        model_dir = repo / name
        version = next_version(doc, model_dir)
        vdir = model_dir / str(version)
        vdir.mkdir(parents=True)
        try:
            sidecar = read_json(build_dir / e.sidecar)
            cc_files, default_file, traced = None, None, None
            if e.backend == "onnxruntime":  # the portable model it was built from; Triton's ORT optimizes it there
                src = run / e.source
                signature = onnx_signature(src)
                default_file = src.name
                files = [src, *sorted(src.parent.glob(src.name + ".data"))]  # external data keeps its recorded name
                kind = "KIND_GPU" if sidecar.get("compute_capability") else "KIND_CPU"
            elif e.backend == "torch":  # a TorchScript program for the PyTorch (LibTorch) backend, INPUT__i names
                from .backends import torch as torch_backend

                renamed = onnx_signature(paths.stage_dir(run, "01_export") / export.onnx)
                for key, prefix in (("inputs", "INPUT"), ("outputs", "OUTPUT")):
                    renamed[key] = [{**s, "name": f"{prefix}__{i}"} for i, s in enumerate(renamed[key])]
                signature, default_file = renamed, "model.pt"
                try:
                    traced = torch_backend.torchscript(build_dir / e.sidecar, e.source_sha256,
                                                       example_inputs(run), vdir / default_file)
                except (ScaleproofError, RuntimeError) as exc:  # untraceable, or not this machine's engine
                    raise NotDeployable(f"no TorchScript program: {str(exc).splitlines()[0][:300]}") from exc
                files, kind = [], "KIND_GPU" if sidecar.get("compute_capability") else "KIND_CPU"
            else:  # a TensorRT plan for the compute capability it was built on
                src = (build_dir / e.sidecar).parent / sidecar["engine_file"]
                signature = onnx_signature(run / e.source)
                cc = sidecar["compute_capability"]
                cc_files = {cc: f"model-sm{cc.replace('.', '')}.plan"}
                files, kind = [src], "KIND_GPU"
            for f in files:
                shutil.copyfile(f, vdir / (cc_files[next(iter(cc_files))] if cc_files else f.name))
            # as written in benchmark.json: the config, deploy.json and the log read it as a plain record
            batcher = bench[e.name].server.batcher.model_dump(exclude_unset=True) if e.name in bench else None
            max_batch = sidecar["input_profile"]["max_batch"]
            config = model_config(name, BACKENDS[e.backend], signature, max_batch, batcher, kind, version,
                                  default_file, cc_files)
            (model_dir / "config.pbtxt").write_text(config)
        except BaseException as exc:  # a model that could not be written leaves no version folder behind
            shutil.rmtree(vdir, ignore_errors=True)
            if not any(model_dir.iterdir()):
                model_dir.rmdir()
            if not isinstance(exc, NotDeployable):
                raise
            skipped.append({"engine": e.name, "reason": str(exc)})  # the other engines are still deployed
            log(f"{name}: not deployed ({exc})")
            continue
        doc["deploys"].append({
            "model": name, "version": version, "engine": e.name, "backend": e.backend,
            "run": str(run), "run_id": manifest["run_id"], "run_manifest_sha256": sha256_file(run / "manifest.json"),
            "engine_sha256": e.engine_sha256, "source": e.source, "source_sha256": e.source_sha256,
            "batcher": batcher, "device_slug": sidecar.get("device_slug"),
            **({"torchscript": traced} if traced else {}),
            "files": {p.relative_to(repo).as_posix(): sha256_file(p) for p in sorted(vdir.iterdir())},
            "deployed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        doc["pins"][name] = version
        doc["configs"][name] = sha256_file(model_dir / "config.pbtxt")
        doc["skipped"] = skipped
        write_json(repo / "deploy.json", doc)  # after every model: a failure later leaves no untraced version
        log(f"{name}: version {version} ({e.name}, batcher {batcher and batcher['max_batch']} / "
            f"{batcher and batcher['max_queue_delay_ms']} ms) pinned")
    doc["skipped"] = skipped
    write_json(repo / "deploy.json", doc)
    return doc


def record_file(repo: Path, path: Path, key: str = "k8s") -> None:
    """Trace another file the deploy wrote into the repository (the Kubernetes manifests) in deploy.json."""
    with locked(repo / "deploy.json"):
        doc = read_deploys(repo)
        doc.setdefault(key, {})[path.relative_to(repo).as_posix()] = sha256_file(path)
        write_json(repo / "deploy.json", doc)


def rollback(repo: str | Path, model: str, to: int | None = None) -> int:
    """Pin `model` to version `to` (default: the deployed version before the pinned one); returns it. Only a version
    deploy.json records (and whose files still match) can be pinned."""
    from .audit import refused_path

    repo = Path(repo).resolve()
    with locked(repo / "deploy.json"):
        doc = read_deploys(repo)
        if model not in doc["pins"]:
            raise ParamsError(f"{repo} has no model {model!r}; it has {sorted(doc['pins'])}")
        pinned = doc["pins"][model]
        recorded = recorded_versions(doc, model)
        if to is None:
            older = [v for v in recorded if v < pinned]
            if not older:
                raise ParamsError(f"{model}: version {pinned} is the oldest deployed; nothing to roll back to")
            to = older[-1]
        if to not in recorded:
            raise ParamsError(f"{model}: version {to} is not recorded in {repo / 'deploy.json'} (a folder made by hand "
                              f"is never served); recorded versions: {recorded}")
        if to not in versions_of(repo / model):
            raise ParamsError(f"{model}: version {to} is recorded but its folder {repo / model / str(to)} is missing")
        entry = [d for d in doc["deploys"] if d["model"] == model and d["version"] == to][-1]
        changed = [rel for rel, digest in entry["files"].items() if refused_path(repo, rel)
                   or not (repo / rel).is_file() or sha256_file(repo / rel) != digest]
        if changed:
            raise ArtifactError(f"{model} version {to} changed since it was deployed ({', '.join(changed)}); not pinned")
        config = repo / model / "config.pbtxt"
        config.write_text(pin_version(config.read_text(), to))
        doc["pins"][model] = to
        doc["configs"][model] = sha256_file(config)
        doc.setdefault("rollbacks", []).append({"model": model, "from": pinned, "to": to,
                                                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        write_json(repo / "deploy.json", doc)
    return to


def verify_repo(repo: str | Path) -> tuple[list[str], dict[str, int]]:
    """Problems in a model repository: every deployed file against its recorded hash, each config against
    its recorded hash and pin, each source run's manifest against the hash recorded at deploy time, each recorded
    version folder present, and nothing on disk that deploy.json does not record. A damaged deploy.json is one
    finding naming it."""
    from .audit import read_finding, refused_path, walk_folder

    repo = Path(repo)
    problems: list[str] = []
    checked = {"artifacts": 0, "claims": 0, "members": 0}
    doc = read_finding(repo / "deploy.json", problems, "deploy.json")
    if doc is None:
        return problems, checked
    if not isinstance(doc, dict) or doc.get("deploy_format") != DEPLOY_FORMAT or not all(
            isinstance(doc.get(k), t) for k, t in (("deploys", list), ("pins", dict), ("configs", dict))) \
            or not all(isinstance(d, dict) and {"model", "version", "files", "run", "run_manifest_sha256"} <= set(d)
                       and isinstance(d["files"], dict) for d in doc["deploys"]):
        return [f"deploy.json: damaged (not the deploy record of format {DEPLOY_FORMAT}: deploys, pins, configs)"], \
            checked
    seen: dict[tuple[str, int], int] = {}
    for d in doc["deploys"]:
        key = (d["model"], d["version"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            problems.append(f"{d['model']} version {d['version']}: recorded more than once in deploy.json (a version "
                            "number was reused)")
        if refused_path(repo, f"{d['model']}/{d['version']}"):
            problems.append(f"{d['model']} version {d['version']}: not a folder inside the repository")
            continue
        if not (repo / d["model"] / str(d["version"])).is_dir():
            problems.append(f"{d['model']}/{d['version']}/: missing (deploy.json records this version)")
        for rel, digest in d["files"].items():
            checked["artifacts"] += 1
            if why := refused_path(repo, rel):
                problems.append(f"{rel}: {why}")
            elif not (repo / rel).is_file():
                problems.append(f"{rel}: missing (deploy.json lists it)")
            elif sha256_file(repo / rel) != digest:
                problems.append(f"{rel}: changed since it was deployed")
        run_manifest = Path(d["run"]) / "manifest.json"
        if run_manifest.is_file() and sha256_file(run_manifest) != d["run_manifest_sha256"]:
            problems.append(f"{d['model']} v{d['version']}: its run's manifest {run_manifest} changed since the deploy")
    for rel, digest in doc.get("k8s", {}).items():
        checked["artifacts"] += 1
        if why := refused_path(repo, rel):
            problems.append(f"{rel}: {why}")
        elif not (repo / rel).is_file() or sha256_file(repo / rel) != digest:
            problems.append(f"{rel}: missing or changed (deploy.json has its sha256)")
    for model, digest in doc["configs"].items():
        config = repo / model / "config.pbtxt"
        checked["claims"] += 1
        if refused_path(repo, f"{model}/config.pbtxt"):
            problems.append(f"{model}/config.pbtxt: not inside the repository")
        elif not config.is_file() or sha256_file(config) != digest:
            problems.append(f"{model}/config.pbtxt: missing or changed (deploy.json has its sha256)")
        elif f"versions: [ {doc['pins'].get(model)} ]" not in config.read_text():
            problems.append(f"{model}/config.pbtxt: does not pin version {doc['pins'].get(model)} as deploy.json says")
    # what is on disk must be what deploy.json records: a version folder made by hand could be served
    recorded = {(d["model"], str(d["version"])) for d in doc["deploys"]}
    files, folders, odd = walk_folder(repo)
    problems += odd
    for rel in folders:
        parts = rel.split("/")
        if len(parts) == 2 and parts[1].isdigit() and (parts[0], parts[1]) not in recorded:
            problems.append(f"{rel}/: a version folder deploy.json does not record (made by hand or left behind)")
    traced = {rel for d in doc["deploys"] for rel in d["files"]} | set(doc.get("k8s", {})) \
        | {f"{m}/config.pbtxt" for m in doc["configs"]}
    for rel in files:
        parts = rel.split("/")
        if len(parts) >= 3 and parts[1].isdigit() and rel not in traced \
                and (parts[0], parts[1]) in recorded:
            problems.append(f"{rel}: in a deployed version folder but not in deploy.json (added after the deploy)")
    return problems, checked
