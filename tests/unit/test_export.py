import numpy as np
import onnxruntime as ort
import pytest

from scaleproof import stages
from scaleproof.config import Params
from scaleproof.errors import AccuracyError
from scaleproof.stages import export


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_user_model_exports_with_dynamic_batch(tmp_path, exporter):
    params = Params(run_dir=str(tmp_path), model="tests.user_models:tiny_convnet", input_shape=[3, 16, 16],
                    exporter=exporter)
    result = export.run(params)
    dims = result["onnx_input_dims"]["input"]
    assert dims[1:] == [3, 16, 16] and isinstance(dims[0], str)
    assert result["parity"]["max_rel_err"] < 1e-4 and result["parity"]["outputs"]["logits"]["top1_agreement"] == 1.0
    assert stages.read_result(tmp_path, "01_export")["onnx_sha256"] == result["onnx_sha256"]
    sess = ort.InferenceSession(str(tmp_path / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 3, 17):  # any batch size runs
        assert sess.run(None, {"input": np.zeros((n, 3, 16, 16), np.float32)})[0].shape == (n, 5)


def test_parity_measures_error_and_agreement():
    ref = np.array([[1.0, 2.0], [3.0, 0.0]], np.float32)
    out = np.array([[1.0, 2.5], [-1.0, 0.0]], np.float32)
    p = export.parity(ref, out)
    assert p["max_abs_err"] == 4.0 and p["top1_agreement"] == 0.5 and p["finite"]
    assert p["max_rel_err"] == pytest.approx(4.0 / 3.0)


def test_parity_gate_stops_the_stage(tmp_path):
    params = Params(run_dir=str(tmp_path), parity_atol=1e-12)
    with pytest.raises(AccuracyError, match="parity_atol"):
        export.run(params)
    assert not (tmp_path / "export" / "export.json").exists()


def test_outputs_are_renamed_safely_in_subgraphs_and_when_returned_twice(tmp_path):
    """A chosen output name that an internal value already has ('embedding' in a BERT), read inside an If
    body too, and one tensor returned as two outputs: the graph stays valid and runs."""
    import onnx
    from onnx import TensorProto, helper

    def out(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["b", 2])

    then_g = helper.make_graph([helper.make_node("Identity", ["embedding"], ["t"])], "then", [], [out("t")])
    else_g = helper.make_graph([helper.make_node("Neg", ["embedding"], ["e"])], "else", [], [out("e")])
    nodes = [helper.make_node("Relu", ["x"], ["embedding"]), helper.make_node("Neg", ["embedding"], ["y"]),
             helper.make_node("If", ["c"], ["z"], then_branch=then_g, else_branch=else_g)]
    graph = helper.make_graph(nodes, "g", [out("x"), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [out("y"), out("y"), out("z")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    export.name_outputs(path, ["embedding", "embedding2", "branch"])
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": np.array([[1.0, -2.0]], np.float32), "c": np.array(True)})
    assert [o.name for o in sess.get_outputs()] == ["embedding", "embedding2", "branch"]
    assert got[0].tolist() == got[1].tolist() == [[-1.0, -0.0]] and got[2].tolist() == [[1.0, 0.0]]


def test_a_model_the_dynamo_exporter_cannot_capture_falls_back_to_torchscript(tmp_path):
    params = Params(run_dir=str(tmp_path), model="tests.user_models:data_dependent_branch", input_shape=[3, 16, 16])
    result = export.run(params)
    assert result["exporter"] == "dynamo" and result["exporter_used"] == "torchscript"
    assert result["exporter_fallback_reason"] and result["parity"]["max_rel_err"] < 1e-4
