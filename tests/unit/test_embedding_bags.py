"""EmbeddingBag exported as a gather and a reduction (no per-bag Loop), with the same sums as torch's."""

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from scaleproof.config import Exporter
from scaleproof.embedding_bags import gather_reduce
from scaleproof.stages.export import onnx_from_torch, torch_outputs
from scaleproof.zoo import load_model

BAGS = [{"name": "clicked", "dtype": "int64", "shape": ["batch", 5], "range": [0, 500]},
        {"name": "topics", "dtype": "int64", "shape": ["batch", 3], "range": [0, 500]}]


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 3])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_the_swapped_bag_sums_as_torchs_does(mode, padding_idx, include_last_offset):
    torch.manual_seed(0)
    bag = nn.EmbeddingBag(50, 8, mode=mode, padding_idx=padding_idx, include_last_offset=include_last_offset)
    holder = nn.Sequential(bag)
    rows = torch.randint(0, 50, (6, 4))
    rows[0, :] = 3  # a bag of padding ids only
    rows[1, 2] = 3
    ids = torch.randint(0, 50, (12,))
    offsets = torch.tensor([0, 3, 3, 7] + ([12] if include_last_offset else []))  # with an empty bag
    weights = torch.rand(12) if mode == "sum" else None
    with torch.no_grad():
        expected = [bag(rows), bag(ids, offsets), bag(ids, offsets, weights) if weights is not None else None]
        swapped = gather_reduce(holder)
        assert swapped == {"embedding_bags_swapped": ["0"], "embedding_bags_left": {}}
        got = [holder[0](rows), holder[0](ids, offsets), holder[0](ids, offsets, weights) if weights is not None else None]
    assert type(holder[0]) is not nn.EmbeddingBag
    for e, g in zip(expected, got, strict=True):
        if e is not None:
            torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6)
    assert holder[0].weight is bag.weight  # the table is shared, not copied


def test_a_bag_with_max_norm_is_left_as_it_is_and_said():
    holder = nn.Sequential(nn.EmbeddingBag(20, 4, max_norm=1.0))
    assert gather_reduce(holder)["embedding_bags_left"] == {"0": "max_norm renormalizes the table's rows in place as "
                                                                  "it runs"}
    assert type(holder[0]) is nn.EmbeddingBag


@pytest.mark.parametrize("exporter", [Exporter.dynamo, Exporter.torchscript])
def test_a_model_with_embedding_bags_exports_without_a_loop(tmp_path, exporter):
    bundle = load_model("tests.user_models:embedding_bags", inputs=BAGS, outputs=["score"])
    rng = np.random.default_rng(1)
    x = {"clicked": rng.integers(0, 3000, (16, 5)), "topics": rng.integers(0, 500, (16, 3))}
    x["clicked"][0, 1:] = 0  # padding ids
    ref = torch_outputs(bundle, x)[0]
    assert gather_reduce(bundle.module)["embedding_bags_swapped"] == ["model.clicks", "model.topics"]
    path, used = onnx_from_torch(bundle, tmp_path / "model.onnx", 18, exporter)
    ops = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    assert used["exporter_used"] == exporter.value
    assert "Loop" not in ops and ops["Gather"] >= 2
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, x)[0], ref, rtol=1e-5, atol=1e-6)
    short = {k: v[:3] for k, v in x.items()}  # another batch size than exported with
    assert sess.run(None, short)[0].shape == (3, 1)


def test_bags_given_by_offsets_export_as_a_scatter_add(tmp_path):
    bag = nn.EmbeddingBag(100, 4, mode="mean")
    holder = nn.Sequential(bag)
    ids, offsets = torch.randint(0, 100, (10,)), torch.tensor([0, 2, 2, 6])
    with torch.no_grad():
        ref = bag(ids, offsets).numpy()
    gather_reduce(holder)

    class Call(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bag = holder[0]

        def forward(self, ids, offsets):
            return self.bag(ids, offsets)

    torch.onnx.export(Call().eval(), (ids, offsets), str(tmp_path / "m.onnx"), dynamo=True, opset_version=18,
                      dynamic_shapes=({0: "n"}, {0: "bags"}))
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node)
    assert "Loop" not in ops and ops["ScatterND"] >= 1
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"ids": ids.numpy(), "offsets": offsets.numpy()})[0], ref, atol=1e-6)
