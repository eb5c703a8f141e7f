"""Embedding tables as weight-only INT8 with one scale per row.

A recommender's weights are mostly its embedding tables (millions of rows × 16–128), read by Gather: no
arithmetic to speed up, but four times the memory and bandwidth of INT8. ONNX Runtime's quantizers give a
Gather's table one scale for the whole tensor (a row of small values then rounds to zeros) and the dynamic
quantizer leaves it in FP32. Here each table's rows get their own symmetric scale (largest |value| / 127):

    Gather(table, ids)  →  Mul(Cast<float>(Gather(table_int8, ids)), Gather(row_scale, ids))

It runs on a model the quantizer has written, whose table Gathers it was told to leave alone (nodes_to_exclude):
ONNX Runtime then never sees the Cast and Mul. A table is a float initializer of rank 2 with at least MIN_ROWS rows whose every reader is a Gather on axis 0
taking it as data; a tensor read otherwise (tied to an output projection, say) is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..onnx_io import load_onnx_checked
from ..provenance import atomic_path

MIN_ROWS = 256  # smaller tables are a few KiB: not worth a Cast and a Mul
FORMAT = "INT8 weight-only, one symmetric scale per row (Gather + Cast + Mul)"


def tables_of(graph) -> dict[str, Any]:
    """Initializer name -> initializer, for every table as the module docstring defines it."""
    import onnx

    inits = {i.name: i for i in graph.initializer}
    readers: dict[str, list] = {}
    for n in graph.node:
        for k, name in enumerate(n.input):
            if name in inits:
                readers.setdefault(name, []).append((n, k))
    graph_outputs = {o.name for o in graph.output}
    found = {}
    for name, init in inits.items():
        if init.data_type != onnx.TensorProto.FLOAT or len(init.dims) != 2 or init.dims[0] < MIN_ROWS:
            continue
        uses = readers.get(name, [])
        if name in graph_outputs or not uses:
            continue
        if all(n.op_type == "Gather" and k == 0 and _axis(n) == 0 for n, k in uses):
            found[name] = init
    return found


def _axis(node) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 0)


def row_quantize(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(INT8 rows, float32 scales of shape (rows, 1)): symmetric, largest |value| of each row to 127."""
    peak = np.abs(table).max(axis=1, keepdims=True).astype(np.float32)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
    return q, scale


def table_memory(path: Path) -> dict[str, Any]:
    """The tables of an FP32 model and their bytes, as stored now (before any quantization)."""
    graph = load_onnx_checked(path, load_external=True).graph
    tables = tables_of(graph)
    rows = [{"table": name, "rows": int(t.dims[0]), "dim": int(t.dims[1]), "bytes": int(t.dims[0] * t.dims[1] * 4)}
            for name, t in tables.items()]
    return {"tables": len(rows), "rows": sum(r["rows"] for r in rows), "fp32_bytes": sum(r["bytes"] for r in rows),
            "per_table": rows}


def quantize_tables(src: Path, dst: Path) -> dict[str, Any]:
    """Write `src` with every table as INT8 rows and per-row scales to `dst` (atomically; `dst` may be `src`);
    the table memory before and after, and the largest error a row's dequantization makes."""
    import onnx
    from onnx import helper, numpy_helper

    model = load_onnx_checked(src, load_external=True)
    graph = model.graph
    tables = tables_of(graph)
    per_table, replaced, added = [], {}, []
    for name, init in tables.items():
        w = numpy_helper.to_array(init).astype(np.float32)
        q, scale = row_quantize(w)
        err = float(np.abs(q.astype(np.float32) * scale - w).max()) if w.size else 0.0
        # names of their own: a quantizer names its scales `<tensor>_scale`
        replaced[name] = (numpy_helper.from_array(q, f"{name}_rows_int8"),
                          numpy_helper.from_array(scale, f"{name}_row_scales"))
        per_table.append({"table": name, "rows": int(w.shape[0]), "dim": int(w.shape[1]), "fp32_bytes": int(w.nbytes),
                          "int8_bytes": int(q.nbytes + scale.nbytes), "max_abs_err": err})
    if replaced:
        nodes = []
        for n in graph.node:
            if n.op_type == "Gather" and n.input[0] in replaced:
                q_init, s_init = replaced[n.input[0]]
                out, ids = n.output[0], n.input[1]
                base = n.name or out
                rows, floats, scales = f"{out}_gathered_int8", f"{out}_gathered_float", f"{out}_gathered_row_scales"
                nodes += [helper.make_node("Gather", [q_init.name, ids], [rows], name=f"{base}_rows_int8", axis=0),
                          helper.make_node("Cast", [rows], [floats], name=f"{base}_rows_cast",
                                           to=onnx.TensorProto.FLOAT),
                          helper.make_node("Gather", [s_init.name, ids], [scales], name=f"{base}_row_scales",
                                           axis=0),
                          helper.make_node("Mul", [floats, scales], [out], name=f"{base}_rows_dequant")]
                added += [m.name for m in nodes[-4:]]
            else:
                nodes.append(n)
        del graph.node[:]
        graph.node.extend(nodes)
        kept = [i for i in graph.initializer if i.name not in replaced]
        del graph.initializer[:]
        graph.initializer.extend([*kept, *(t for pair in replaced.values() for t in pair)])
        with atomic_path(dst) as tmp:
            onnx.save_model(model, str(tmp))
        load_onnx_checked(dst, load_external=False)  # the ONNX checker passes on what was written
    before = sum(t["fp32_bytes"] for t in per_table)
    after = sum(t["int8_bytes"] for t in per_table)
    return {"format": FORMAT, "tables": len(per_table), "rows": sum(t["rows"] for t in per_table),
            "fp32_bytes": before, "int8_bytes": after,
            "saved_pct": round(100.0 * (1 - after / before), 2) if before else 0.0,
            "max_abs_err": max((t["max_abs_err"] for t in per_table), default=0.0), "per_table": per_table,
            "nodes": added}
