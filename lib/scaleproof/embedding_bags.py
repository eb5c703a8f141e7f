"""`nn.EmbeddingBag` as a gather and a reduction, for export.

Both ONNX exporters turn an EmbeddingBag into a `Loop` over its bags: slow in ONNX Runtime, and ONNX Runtime's
quantizer then writes graphs the ONNX checker refuses ("Nodes in a graph must be topologically sorted … Loop").
The same sums exist as plain ops: fixed-length bags (2-D ids) are a Gather and a ReduceSum/ReduceMax over the bag
axis; bags given by offsets (1-D ids) are a Gather and a scatter-add into the bags (ScatterND with reduction,
CumSum for each id's bag). `gather_reduce` swaps every EmbeddingBag of a model for such a module, sharing its
weight; bags it cannot express that way (max over offsets, max_norm, which renormalizes the table while it runs)
stay as they are, and the export result says which.
"""

from __future__ import annotations

from typing import Any


def unsupported(bag) -> str | None:
    """Why an EmbeddingBag cannot be swapped, or None."""
    if bag.max_norm is not None:
        return "max_norm renormalizes the table's rows in place as it runs"
    return None


def _bag_module():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class GatherReduceBag(nn.Module):
        """An EmbeddingBag's forward (sum, mean or max; per-sample weights; padding_idx) as a gather and a reduction."""

        def __init__(self, bag: nn.EmbeddingBag) -> None:
            super().__init__()
            self.weight = bag.weight  # shared: the state dict keeps its key, the table is not copied
            self.mode, self.padding_idx = bag.mode, bag.padding_idx
            self.include_last_offset = bag.include_last_offset

        def forward(self, input, offsets=None, per_sample_weights=None):
            emb = F.embedding(input, self.weight)
            if per_sample_weights is not None:
                emb = emb * per_sample_weights.unsqueeze(-1)
            keep = None if self.padding_idx is None else (input != self.padding_idx).unsqueeze(-1)
            if input.dim() == 2:  # fixed-length bags: one row of ids per bag
                return self._reduce_rows(emb, keep)
            if offsets is None:
                raise ValueError("EmbeddingBag with 1-D input needs offsets")
            if self.include_last_offset:
                offsets = offsets[:-1]
            return self._reduce_offsets(input, offsets, emb, keep)

        def _reduce_rows(self, emb, keep):
            if self.mode == "max":
                if keep is not None:
                    emb = emb.masked_fill(~keep, float("-inf"))
                out = emb.amax(1)
                return torch.where(torch.isfinite(out), out, torch.zeros_like(out))  # an empty bag gives 0, as torch's
            if keep is not None:
                emb = emb * keep
            total = emb.sum(1)
            if self.mode == "sum":
                return total
            count = keep.sum(1) if keep is not None else torch.full_like(total[:, :1], emb.shape[1])
            return total / count.clamp(min=1).to(total.dtype)

        def _reduce_offsets(self, input, offsets, emb, keep):
            n, bags = input.shape[0], offsets.shape[0]
            # each id's bag: a 1 where a bag starts (after the first), summed along the ids
            starts = torch.zeros(n, dtype=offsets.dtype).index_add(0, offsets[1:], torch.ones_like(offsets[1:]))
            bag_of = starts.cumsum(0)
            if keep is not None:
                emb = emb * keep
            total = torch.zeros(bags, emb.shape[1], dtype=emb.dtype).index_add(0, bag_of, emb)
            if self.mode == "sum":
                return total
            ones = keep.to(emb.dtype) if keep is not None else torch.ones(n, 1, dtype=emb.dtype)
            count = torch.zeros(bags, 1, dtype=emb.dtype).index_add(0, bag_of, ones)
            return total / count.clamp(min=1)

    return GatherReduceBag


def gather_reduce(module) -> dict[str, Any]:
    """Swap every `nn.EmbeddingBag` inside `module` (in place) for its gather/reduce equivalent; what was swapped
    and what was left, with why."""
    from torch import nn

    bag_module = _bag_module()
    swapped, left = [], {}
    for name, child in list(module.named_modules()):
        if not isinstance(child, nn.EmbeddingBag):
            continue
        why = unsupported(child)
        if why:
            left[name] = why
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        swapped_bag = bag_module(child)
        if child.mode == "max":
            swapped_bag = _max_rows_only(swapped_bag, child)
        setattr(parent, attr, swapped_bag)
        swapped.append(name)
    return {"embedding_bags_swapped": swapped, "embedding_bags_left": left}


def _max_rows_only(swapped, original):
    """mode='max' has no scatter-max here: 2-D bags use the swap, offsets the original module."""
    from torch import nn

    class MaxBag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rows, self.bag = swapped, [original]  # the original is held outside the module tree: one weight key

        @property
        def weight(self):
            return self.rows.weight

        def forward(self, input, offsets=None, per_sample_weights=None):
            if input.dim() == 2:
                return self.rows(input, offsets, per_sample_weights)
            return self.bag[0](input, offsets, per_sample_weights)

    return MaxBag()
