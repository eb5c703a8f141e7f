"""Stage 01: PyTorch -> ONNX with a dynamic batch axis, checked, and its parity with PyTorch measured."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths, stages
from ..config import Exporter, Params
from ..datasets import describe_data, splits_for
from ..embedding_bags import gather_reduce
from ..errors import AccuracyError, ParamsError
from ..io_spec import Feed, ModelIO, feed_len, feed_slice
from ..onnx_io import load_onnx_checked
from ..provenance import sha256_file
from ..zoo import ModelBundle, load_model_for

logger = logging.getLogger(__name__)

PARITY_SAMPLES = 256
NEAR_ZERO = 1e-6  # outputs smaller than this everywhere say nothing (and underflow in FP16)
EXTERNAL_DATA_BYTES = 1 << 30  # protobuf caps a file at 2 GB: larger weights go to a side file


def example_inputs(io: ModelIO, batch: int = 2) -> tuple:
    import torch

    return tuple(torch.from_numpy(v) for v in io.synthetic(batch, np.random.default_rng(0)).values())


def onnx_from_torch(bundle: ModelBundle, out: Path, opset: int, exporter: Exporter) -> tuple[Path, dict[str, str]]:
    """Export `bundle` to `out`; if the dynamo exporter fails on the model (torch.export cannot capture
    every model), the TorchScript exporter is tried and the fallback recorded. Returns the path and
    what was used."""
    try:
        return export_with(bundle, out, opset, exporter), {"exporter_used": exporter.value}
    except Exception as first:  # torch.export / the ONNX translation raise many exception types
        if exporter is not Exporter.dynamo:
            raise AccuracyError(f"the {exporter.value} exporter failed on {bundle.name}: {type(first).__name__}: "
                                f"{first}") from first
        reason = f"{type(first).__name__}: {str(first).strip().splitlines()[0] if str(first).strip() else ''}"[:300]
        logger.warning(f"the dynamo exporter failed ({reason}); trying the TorchScript exporter")
        try:
            return export_with(bundle, out, opset, Exporter.torchscript), {
                "exporter_used": Exporter.torchscript.value, "exporter_fallback_reason": reason}
        except Exception as second:
            raise AccuracyError(f"neither exporter could export {bundle.name}: dynamo: {reason}; torchscript: "
                                f"{type(second).__name__}: {second}") from second


def export_with(bundle: ModelBundle, out: Path, opset: int, exporter: Exporter) -> Path:
    """Export `bundle` to `out` with its declared dynamic axes (written in a temp folder, then moved in,
    so `out` is never partial)."""
    import torch

    module, io = bundle.module, bundle.io
    example = example_inputs(io)
    n_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    external = n_bytes > EXTERNAL_DATA_BYTES
    axes = io.dynamic_axes()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        tmp_model = Path(tmp) / out.name
        names = {"input_names": io.input_names, "output_names": io.outputs}
        if exporter is Exporter.dynamo:
            # dimension names as strings: torch names the ONNX dims after them and infers their bounds;
            # NamedIO.forward takes *args, which torch.export sees as one tuple argument. Outputs are
            # renamed afterwards: the exporter's own renaming breaks the graph when a chosen name is
            # also an internal value's ("embedding" in a BERT)
            torch.onnx.export(module, example, str(tmp_model), dynamo=True, opset_version=opset,
                              dynamic_shapes=(tuple(axes[n] for n in io.input_names),), external_data=external,
                              optimize=True, verbose=False, input_names=io.input_names)
            name_outputs(tmp_model, io.outputs)
        else:
            batch_out = {o: {0: "batch"} for o in io.outputs}
            torch.onnx.export(module, example, str(tmp_model), dynamo=False, opset_version=opset,
                              dynamic_axes={**axes, **batch_out}, **names)
        for f in Path(tmp).iterdir():  # the model and any external-data side files
            f.replace(out.parent / f.name)
    return out


def name_outputs(path: Path, names: list[str]) -> None:
    """Give the graph's outputs `names`: an internal value that already has one of them is renamed first
    (in subgraphs too, which may read it), and a tensor returned twice gets an Identity per extra output."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)  # external data files stay where they are
    graph = model.graph
    current = [o.name for o in graph.output]
    if current == names:
        return
    if len(current) != len(names):
        raise AccuracyError(f"the exported graph has {len(current)} outputs {current}, the model declares {names}")
    for i, name in enumerate(current):
        if name in current[:i]:  # the same tensor returned twice: a copy gets its own name
            copy = f"{name}__copy{i}"
            graph.node.append(helper.make_node("Identity", [name], [copy], name=f"scaleproof_copy_{i}"))
            graph.output[i].name = current[i] = copy
    taken = set(_value_names(graph))
    renames = {v: f"{v}__internal" for v in set(names) & taken if v not in current}
    renames |= {old: new for old, new in zip(current, names, strict=True) if old != new}
    _rename(graph, renames)
    onnx.save(model, str(path))


def _value_names(graph):
    for n in graph.node:
        yield from (*n.input, *n.output)
        for a in n.attribute:
            for g in (*([a.g] if a.HasField("g") else []), *a.graphs):
                yield from _value_names(g)
    yield from (i.name for i in graph.initializer)


def _rename(graph, renames: dict[str, str]) -> None:
    """Rename values everywhere in `graph` and its subgraphs (If/Loop/Scan bodies read outer values by name)."""
    for n in graph.node:
        n.input[:] = [renames.get(v, v) for v in n.input]
        n.output[:] = [renames.get(v, v) for v in n.output]
        for a in n.attribute:
            for g in (*([a.g] if a.HasField("g") else []), *a.graphs):
                _rename(g, renames)
    for seq in (graph.output, graph.value_info, graph.initializer):
        for v in seq:
            v.name = renames.get(v.name, v.name)


def torch_outputs(bundle: ModelBundle, x: Feed, batch: int = 256) -> list[np.ndarray]:
    """The FP32 reference: every output of the PyTorch model over `x`, in output order."""
    import torch

    chunks = []
    with torch.inference_mode():
        for i in range(0, feed_len(x), batch):
            part = feed_slice(x, i, i + batch)
            outs = bundle.module(*(torch.from_numpy(part[n]) for n in bundle.io.input_names))
            chunks.append([o.float().numpy() for o in outs])
    return [np.concatenate(c) for c in zip(*chunks, strict=True)]


def output_scale(ref: np.ndarray) -> float:
    """An output's own scale (largest magnitude): errors are relative to it, so tiny outputs are not
    judged against 1 (a model with 1e-21 logits would then pass any check)."""
    finite = ref[np.isfinite(ref)]
    return max(float(np.abs(finite).max()) if finite.size else 0.0, np.finfo(np.float32).tiny)


def parity(ref: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    """How far `out` is from `ref` (one output): absolute and relative errors and, for 2-D outputs of
    two or more classes, top-1 agreement."""
    ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
    diff = np.abs(out64 - ref64)
    # relative to how much the reference varies between samples, not to its magnitude: a large common
    # offset would make any output look close
    spread = float(np.abs(ref64 - ref64.mean(0)).mean()) if len(ref) > 1 else float(np.abs(ref64).mean())
    row = {
        "samples": len(ref),
        "max_abs_err": float(diff.max()),
        "mean_abs_err": float(diff.mean()),
        "max_rel_err": float(diff.max() / output_scale(ref)),
        "mean_rel_err": float(diff.mean() / max(spread, np.finfo(np.float32).tiny)),
        "finite": bool(np.isfinite(out).all()),
    }
    if has_classes(ref):
        row["top1_agreement"] = float((out.argmax(1) == ref.argmax(1)).mean())
    return row


def labels_fit_classes(params: Params, splits: dict, ref: list[np.ndarray], names: list[str]) -> None:
    """Refuse labels that are no class of the judged output (labels 10..19 for 10 classes would otherwise make
    every engine's top-1 zero and the gate's drop zero too), naming the first bad value and where it is."""
    from ..metrics import judged_index

    judged = ref[judged_index(params, names)]
    if not has_classes(judged):
        return
    classes = judged.shape[1]
    for name, split in splits.items():
        y = split.y
        if y is None or not len(y):
            continue
        bad = np.flatnonzero((y < 0) | (y >= classes))
        if bad.size:
            source = (params.val_data if name == "val" else params.calib_data) or f"the {name} data"
            raise ParamsError(f"{source}: label {int(y[bad[0]])} (row {int(bad[0])} of the {name} split, {bad.size} "
                              f"such rows) is outside the {classes} classes (0..{classes - 1}) of output "
                              f"{names[judged_index(params, names)]!r}; labels must be class indices of that output")


def has_classes(ref: np.ndarray) -> bool:
    """Whether argmax over axis 1 means something: a (N, C) output with C >= 2."""
    return ref.ndim == 2 and ref.shape[1] >= 2


def degenerate(ref: np.ndarray) -> str | None:
    """Why an FP32 reference output cannot judge anything (non-finite, near zero, the same for every
    sample), or None."""
    if not np.isfinite(ref).all():
        return f"{int((~np.isfinite(ref)).sum())} non-finite values"
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    if scale < NEAR_ZERO:
        return f"near-zero outputs (largest magnitude {scale:.3g} < {NEAR_ZERO:g})"
    if len(ref) > 1 and float(np.ptp(ref, axis=0).max()) <= 1e-6 * scale:
        return "constant outputs: every sample gives the same values"
    return None


def parity_all(refs: list[np.ndarray], outs: list[np.ndarray], names: list[str]) -> dict[str, Any]:
    """Parity of every output, and the largest relative error among them (each against its own scale)."""
    per = {n: parity(r, o) for n, r, o in zip(names, refs, outs, strict=True)}
    return {"samples": len(refs[0]), "max_rel_err": max(r["max_rel_err"] for r in per.values()),
            "finite": all(r["finite"] for r in per.values()), "outputs": per}


def ort_outputs(sess, x: Feed, batch: int = 64) -> list[np.ndarray]:
    chunks = [sess.run(None, feed_slice(x, i, i + batch)) for i in range(0, feed_len(x), batch)]
    return [np.concatenate(c) for c in zip(*chunks, strict=True)]


def run(params: Params) -> dict[str, Any]:
    from ..backends.onnxruntime import ort_session

    out_dir = paths.stage_dir(params.run_path, "01_export")
    bundle = load_model_for(params)
    io = bundle.io
    splits = splits_for(params, io, bundle.dataset)
    data = describe_data(params, splits, bundle.dataset)
    x = feed_slice(splits["val"].x, 0, PARITY_SAMPLES)
    ref = torch_outputs(bundle, x)  # the model as written: parity also checks the EmbeddingBag swap below
    labels_fit_classes(params, splits, ref, io.outputs)
    bags = gather_reduce(bundle.module)  # no per-bag Loop in the ONNX graph
    if bags["embedding_bags_swapped"]:
        logger.info(f"{len(bags['embedding_bags_swapped'])} EmbeddingBag(s) exported as gather + reduce")
    model_path, used = onnx_from_torch(bundle, out_dir / "model.onnx", params.opset, params.exporter)
    model = load_onnx_checked(model_path, load_external=False)

    sess = ort_session(model_path, threads=params.threads)
    par = parity_all(ref, ort_outputs(sess, x), io.outputs)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    result = {
        "model": params.model,
        "weights": bundle.weights,
        "weights_sha256": bundle.weights_sha256,
        "dataset": bundle.dataset if not params.val_data else "user",
        "io": io.model_dump(mode="json"),
        "input_names": io.input_names,
        "output_names": io.outputs,
        "onnx_input_dims": dims,
        "data": data,
        "onnx": "model.onnx",
        "onnx_sha256": sha256_file(model_path),
        "onnx_nodes": len(model.graph.node),
        "opset": params.opset,
        "exporter": params.exporter.value,
        **used,
        "parameters": int(sum(p.numel() for p in bundle.module.parameters())),
        **bags,
        "parity": par,
        "parity_atol": params.parity_atol,
        "reference_degenerate": {n: why for n, r in zip(io.outputs, ref, strict=True) if (why := degenerate(r))},
    }
    if not par["finite"]:
        raise AccuracyError("the exported ONNX model produces NaN/Inf on real inputs; check the model's ops")
    if par["max_rel_err"] > params.parity_atol:
        worst = max(par["outputs"], key=lambda n: par["outputs"][n]["max_rel_err"])
        raise AccuracyError(f"ONNX differs from PyTorch by {par['max_rel_err']:.3g} on output {worst!r} (relative to "
                            f"that output's scale), above parity_atol={params.parity_atol}; try exporter=torchscript "
                            "or another opset")
    fixed = [n for n, d in dims.items() if not isinstance(d[0], str)]
    if fixed:
        raise AccuracyError(f"exported inputs {fixed} have a fixed batch axis ({dims}); the batch axis must be dynamic")
    stages.write_result(params.run_path, "01_export", result, params)
    return result
