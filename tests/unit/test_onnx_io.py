"""Faults 1-3: bad model files are refused with a clear message, never half-loaded."""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from scaleproof.errors import ArtifactError, ParamsError
from scaleproof.onnx_io import load_onnx_checked


def write_model(folder, external: bool):
    w = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = folder / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=external, location="m.data", size_threshold=0)
    return path


def set_location(path, location):
    m = onnx.load(str(path), load_external_data=False)
    for e in m.graph.initializer[0].external_data:
        if e.key == "location":
            e.value = location
    onnx.save_model(m, str(path))


def test_good_model_with_external_data_loads(tmp_path):
    model = load_onnx_checked(write_model(tmp_path, external=True))
    assert numpy_helper.to_array(model.graph.initializer[0]).sum() == sum(range(64))


def test_missing_empty_truncated_and_foreign_files(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_onnx_checked(tmp_path / "none.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ArtifactError, match="empty"):
        load_onnx_checked(tmp_path / "empty.onnx")
    good = write_model(tmp_path, external=False).read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 2])
    with pytest.raises(ArtifactError):
        load_onnx_checked(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("this is a CSV, not a model\n1,2,3\n")
    with pytest.raises(ArtifactError):
        load_onnx_checked(tmp_path / "text.onnx")


@pytest.mark.parametrize("location", ["../m.data", "/etc/passwd"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    path = write_model(tmp_path, external=True)
    set_location(path, location)
    with pytest.raises(ArtifactError, match="outside the model folder"):
        load_onnx_checked(path)


def test_external_data_through_a_symlink_is_refused(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    path = write_model(inner, external=True)
    (inner / "m.data").rename(tmp_path / "secret.data")
    os.symlink(tmp_path / "secret.data", inner / "m.data")
    with pytest.raises(ArtifactError, match="link"):
        load_onnx_checked(path)


def test_external_data_shorter_than_declared_is_refused(tmp_path):
    path = write_model(tmp_path, external=True)
    data = tmp_path / "m.data"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="truncated"):
        load_onnx_checked(path)


def test_io_from_onnx_reads_names_dtypes_and_named_dims():
    from scaleproof.onnx_io import io_from_onnx

    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "seq"])
    fixed = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 3])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [ids, fixed], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(ParamsError, match="give its size in dims"):
        io_from_onnx(model)
    io = io_from_onnx(model, {"seq": 16})
    assert io.sample_shapes() == {"ids": (16,), "x": (3,)} and io.outputs == ["y"]
    assert [i.dtype for i in io.inputs] == ["int64", "float32"]  # a fixed first axis is taken as the batch
    assert onnx.checker.check_model(model) is None


def declare_length(path, length):
    m = onnx.load(str(path), load_external_data=False)
    for e in m.graph.initializer[0].external_data:
        if e.key == "length":
            e.value = str(length)
    onnx.save_model(m, str(path))


@pytest.mark.parametrize("length", [128, 512])
def test_a_declared_length_that_disagrees_with_the_shape_is_refused_naming_the_tensor(tmp_path, length):
    """An 8x8 float32 tensor is 256 bytes: a declaration of 128 (data left unread) or 512 (past the tensor) is refused
    at load, before FP16 conversion or quantization can fail on it with a raw ValueError."""
    path = write_model(tmp_path, external=True)
    declare_length(path, length)
    with pytest.raises(ArtifactError, match=f"tensor 'w' declares {length} bytes .* needs 256"):
        load_onnx_checked(path)


def test_fp16_conversion_refuses_the_same_model_with_the_same_error(tmp_path):
    from scaleproof.quantization.fp16 import to_fp16

    path = write_model(tmp_path, external=True)
    declare_length(path, 128)
    with pytest.raises(ArtifactError, match="tensor 'w' declares 128 bytes"):
        to_fp16(path, tmp_path / "m.fp16.onnx")
