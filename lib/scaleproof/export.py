"""Stage 01: PyTorch -> ONNX with a dynamic batch axis, checked, and its parity with PyTorch measured."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import paths, stages
from .config import Exporter, Params
from .datasets import splits_for
from .errors import AccuracyError
from .onnx_io import load_onnx_checked
from .provenance import sha256_file
from .zoo import ModelBundle, load_model

PARITY_SAMPLES = 256
EXTERNAL_DATA_BYTES = 1 << 30  # protobuf caps a file at 2 GB: larger weights go to a side file


def onnx_from_torch(bundle: ModelBundle, out: Path, opset: int, exporter: Exporter) -> Path:
    """Export `bundle` to `out` (written in a temp folder, then moved in, so `out` is never partial)."""
    import torch

    module = bundle.module
    example = torch.zeros((2, *bundle.input_shape), dtype=torch.float32)
    n_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    external = n_bytes > EXTERNAL_DATA_BYTES
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        tmp_model = Path(tmp) / out.name
        names = {"input_names": [bundle.input_name], "output_names": [bundle.output_name]}
        if exporter is Exporter.dynamo:
            batch = torch.export.Dim("batch", min=1, max=65536)
            torch.onnx.export(module, (example,), str(tmp_model), dynamo=True, opset_version=opset,
                              dynamic_shapes=({0: batch},), external_data=external, optimize=True,
                              verbose=False, **names)
        else:
            torch.onnx.export(module, (example,), str(tmp_model), dynamo=False, opset_version=opset,
                              dynamic_axes={bundle.input_name: {0: "batch"}, bundle.output_name: {0: "batch"}},
                              **names)
        for f in Path(tmp).iterdir():  # the model and any external-data side files
            f.replace(out.parent / f.name)
    return out


def torch_outputs(bundle: ModelBundle, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return np.concatenate([bundle.module(torch.from_numpy(x[i:i + batch])).numpy()
                               for i in range(0, len(x), batch)])


def parity(ref: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    """How far `out` is from `ref`: max/mean absolute error, relative error and top-1 agreement."""
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    scale = max(1.0, float(np.abs(ref).max()))
    return {
        "samples": len(ref),
        "max_abs_err": float(diff.max()),
        "mean_abs_err": float(diff.mean()),
        "max_rel_err": float(diff.max() / scale),
        "top1_agreement": float((out.argmax(1) == ref.argmax(1)).mean()),
        "finite": bool(np.isfinite(out).all()),
    }


def run(params: Params) -> dict[str, Any]:
    from .backends.onnxruntime import ort_session

    out_dir = paths.stage_dir(params.run_path, "01_export")
    bundle = load_model(params.model, params.input_shape)
    model_path = onnx_from_torch(bundle, out_dir / "model.onnx", params.opset, params.exporter)
    model = load_onnx_checked(model_path, load_external=False)

    x = splits_for(bundle.dataset, bundle.input_shape, params.seed)["val"].x[:PARITY_SAMPLES]
    ref = torch_outputs(bundle, x)
    sess = ort_session(model_path, threads=params.threads)
    got = np.concatenate([sess.run(None, {bundle.input_name: x[i:i + 64]})[0] for i in range(0, len(x), 64)])
    par = parity(ref, got)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    result = {
        "model": params.model,
        "weights": bundle.weights,
        "dataset": bundle.dataset,
        "input_name": bundle.input_name,
        "output_name": bundle.output_name,
        "input_shape": list(bundle.input_shape),
        "onnx_input_dims": dims,
        "onnx": "model.onnx",
        "onnx_sha256": sha256_file(model_path),
        "onnx_nodes": len(model.graph.node),
        "opset": params.opset,
        "exporter": params.exporter.value,
        "parameters": int(sum(p.numel() for p in bundle.module.parameters())),
        "parity": par,
        "parity_atol": params.parity_atol,
    }
    if not par["finite"]:
        raise AccuracyError("the exported ONNX model produces NaN/Inf on real inputs; check the model's ops")
    if par["max_rel_err"] > params.parity_atol:
        raise AccuracyError(f"ONNX differs from PyTorch by {par['max_rel_err']:.3g} (relative to the output "
                            f"scale), above parity_atol={params.parity_atol}; try exporter=torchscript or "
                            "another opset")
    if not isinstance(dims[0], str):
        raise AccuracyError(f"exported input has a fixed batch axis {dims}; the batch axis must be dynamic")
    stages.write_result(params.run_path, "01_export", result)
    return result

