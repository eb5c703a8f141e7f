"""Embedding tables as weight-only INT8 with one scale per row: what becomes INT8, what is left, what it saves."""

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from scaleproof.quantization.embedding_tables import quantize_tables, row_quantize, table_memory


class Recommender(nn.Module):
    """Two tables read by Gather (the exporter folds the projection's transposed copy of `words` into its own
    constant) and a small table below MIN_ROWS."""

    def __init__(self) -> None:
        super().__init__()
        self.items = nn.Embedding(4000, 16)
        self.words = nn.Embedding(300, 16)
        self.flags = nn.Embedding(10, 16)
        with torch.no_grad():  # rows of very different scales: one scale per table would flatten the small ones
            self.items.weight.mul_(torch.logspace(-3, 1, 4000).unsqueeze(1))

    def forward(self, item, word, flag):
        h = self.items(item).sum(1) + self.words(word).sum(1) + self.flags(flag).sum(1)
        return h @ self.words.weight.T  # the tied projection


def export(tmp_path):
    torch.manual_seed(0)
    model = Recommender().eval()
    x = (torch.randint(0, 4000, (4, 3)), torch.randint(0, 300, (4, 2)), torch.randint(0, 10, (4, 1)))
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, x, str(path), dynamo=True, opset_version=18, input_names=["item", "word", "flag"],
                      dynamic_shapes=({0: "batch"}, {0: "batch"}, {0: "batch"}))
    return model, path


def test_only_tables_read_by_gather_alone_become_int8_rows(tmp_path):
    model, path = export(tmp_path)
    before = table_memory(path)
    assert [t["table"] for t in before["per_table"]] == ["items.weight", "words.weight"]
    assert before["fp32_bytes"] == 4300 * 16 * 4
    out = tmp_path / "model.tables.onnx"
    r = quantize_tables(path, out)
    assert r["tables"] == 2 and r["rows"] == 4300
    assert r["int8_bytes"] == 4300 * 16 + 4300 * 4 and r["saved_pct"] == 68.75
    graph = onnx.load(str(out)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    assert "items.weight" not in inits and inits["items.weight_rows_int8"].dtype == np.int8
    assert inits["items.weight_row_scales"].shape == (4000, 1)
    assert inits["flags.weight"].dtype == np.float32  # too small to be worth it
    assert Counter(n.op_type for n in graph.node)["Cast"] >= 1 and set(r["nodes"]) <= {n.name for n in graph.node}
    # each row keeps its own precision: the small rows too
    rng = np.random.default_rng(0)
    feed = {"item": rng.integers(0, 4000, (64, 3)), "word": rng.integers(0, 300, (64, 2)),
            "flag": rng.integers(0, 10, (64, 1))}
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert np.abs(got - ref).max() <= 0.01 * np.abs(ref).max()


def test_row_scales_bound_each_rows_error():
    table = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32) * np.logspace(-4, 2, 300)[:, None]
    table[7] = 0.0
    q, scale = row_quantize(table)
    err = np.abs(q.astype(np.float32) * scale - table).max(1)
    assert np.all(err <= scale[:, 0] / 2 + 1e-9) and np.all(q[7] == 0) and np.abs(q).max() == 127


def test_a_table_also_read_by_a_matmul_is_left_in_fp32(tmp_path):
    from onnx import TensorProto, helper

    w = np.random.default_rng(2).normal(size=(512, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
         helper.make_node("Transpose", ["table"], ["table_t"]),
         helper.make_node("MatMul", ["rows", "table_t"], ["logits"])],
        "tied", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 512])],
        [numpy_helper.from_array(w, "table")])
    path = tmp_path / "tied.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    assert table_memory(path)["tables"] == 0
    assert quantize_tables(path, tmp_path / "out.onnx")["tables"] == 0 and not (tmp_path / "out.onnx").exists()
