"""Loading ONNX files defensively: a model file is data from outside, checked before it is used."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ArtifactError

# bytes per element of the ONNX tensor types whose raw data has a fixed size (TensorProto.DataType numbers)
ELEMENT_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def tensor_nbytes(t) -> int | None:
    """Bytes a tensor's raw data must have (shape x element size), or None for types without a fixed size."""
    import math

    size = ELEMENT_BYTES.get(t.data_type)
    return math.prod(t.dims) * size if size else None


def check_external_data(model_path: Path, model) -> None:
    """Every external tensor must live inside the model's folder and be as long as it claims."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    base = model_path.parent.resolve()
    tensors = list(model.graph.initializer)
    for node in model.graph.node:  # Constant nodes can carry external tensors too
        tensors += [a.t for a in node.attribute if a.HasField("t")]
    for t in tensors:
        if not uses_external_data(t):
            continue
        info = ExternalDataInfo(t)
        loc = info.location
        if not loc or os.path.isabs(loc) or ".." in Path(loc).parts:
            raise ArtifactError(f"{model_path.name}: tensor {t.name!r} points outside the model folder "
                                f"({loc!r}); external data must be a relative path inside {base}")
        target = base / loc
        if target.is_symlink() or not target.resolve().is_relative_to(base):
            raise ArtifactError(f"{model_path.name}: tensor {t.name!r} external data {loc!r} is a link "
                                f"leading outside {base}; copy the data file into the model folder")
        if not target.is_file():
            raise ArtifactError(f"{model_path.name}: external data file {loc!r} for tensor {t.name!r} is missing")
        expected = tensor_nbytes(t)
        if info.length is not None and expected is not None and info.length != expected:
            raise ArtifactError(f"{model_path.name}: tensor {t.name!r} declares {info.length} bytes of external data "
                                f"but its shape {list(t.dims)} needs {expected}: the model or its data file was "
                                "altered; re-export the model")
        size = target.stat().st_size
        end = (info.offset or 0) + (info.length or 0)
        if info.length is not None and end > size:
            raise ArtifactError(f"{model_path.name}: tensor {t.name!r} needs bytes up to {end} of {loc!r}, "
                                f"but the file has {size}: it is truncated; re-export the model")


def load_onnx_checked(path: str | os.PathLike, load_external: bool = True):
    """Load and check an ONNX model, turning every way a file can be bad into a clear ArtifactError."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"ONNX model {path} does not exist; run the export stage first")
    if path.stat().st_size == 0:
        raise ArtifactError(f"ONNX model {path} is empty (0 bytes): the export was interrupted; export again")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ArtifactError(f"{path} is not a readable ONNX model (truncated or another format): {e}") from e
    if not model.graph.node:
        raise ArtifactError(f"{path} parsed but holds no graph nodes: it is not an ONNX model or is truncated")
    check_external_data(path, model)
    try:
        onnx.checker.check_model(str(path))  # by path, so models over 2 GB and external data are checked too
    except onnx.checker.ValidationError as e:
        raise ArtifactError(f"{path} fails the ONNX checker: {e}") from e
    if load_external:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, str(path.parent))
    return model


ONNX_DTYPES = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 9: "bool"}  # TensorProto elem types


def io_from_onnx(model, dims: dict[str, int] | None = None):
    """The ModelIO of an ONNX graph: its (non-initializer) inputs with their dtypes and shapes, the first
    axis the batch; other named dimensions keep their names and take their size from `dims`."""
    from .errors import ParamsError
    from .io_spec import BATCH_DIM, InputSpec, ModelIO

    inits = {i.name for i in model.graph.initializer}
    inputs = []
    for i in (i for i in model.graph.input if i.name not in inits):
        t = i.type.tensor_type
        if t.elem_type not in ONNX_DTYPES:
            raise ArtifactError(f"input {i.name!r} has ONNX element type {t.elem_type}; scaleproof feeds "
                                f"{', '.join(ONNX_DTYPES.values())}")
        shape = [d.dim_param or (d.dim_value if d.HasField("dim_value") else f"dim{a}") for a, d in enumerate(t.shape.dim)]
        if not shape:
            raise ArtifactError(f"input {i.name!r} is a scalar: scaleproof feeds batches (a first, batch axis)")
        # a fixed first axis is taken as the batch too: the TensorRT build then asks for a matching profile
        inputs.append(InputSpec(name=i.name, dtype=ONNX_DTYPES[t.elem_type], shape=[BATCH_DIM, *shape[1:]]))
    from pydantic import ValidationError

    try:
        return ModelIO(inputs=inputs, outputs=[o.name for o in model.graph.output], dims=dict(dims or {}))
    except ValidationError as e:  # a named dimension without a size, most often
        why = "; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())
        raise ParamsError(f"{why} (the ONNX model has named dimensions after the batch axis)") from None
