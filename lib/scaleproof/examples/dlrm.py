"""A DLRM-style click-through model, shaped like the recommenders teams price: 13 dense features through a
bottom MLP, 26 categorical features as `nn.EmbeddingBag` tables (sum over a fixed-length bag of ids per
feature), the pairwise dot products of the 27 vectors (DLRM's interaction), a top MLP and a sigmoid: the
probability of a click, one value per request.

Inputs: `dense` float32 [batch, 13] and `sparse` int64 [batch, 26, BAG] (each feature's ids index its own
table). Output: `ctr` float32 [batch, 1].

`make_files` writes what a user would bring: weights trained here on click logs drawn from a planted model
(Zipf-distributed ids, each id with its own hidden effect), so the model reaches a real held-out AUC, and
calibration and validation samples with 0/1 labels as .npz files, disjoint from training and from each other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DENSE, TABLES, BAG = 13, 26, 2


def table_rows(size: str) -> list[int]:
    """Rows of the 26 tables: `small` for tests (8k rows in all), `full` over a million rows in all."""
    if size == "small":
        return [int(r) for r in np.geomspace(256, 600, TABLES)]
    return [int(r) for r in np.geomspace(2_000, 250_000, TABLES)]


def _dlrm(size: str):
    import torch
    from torch import nn

    dim = 16 if size == "small" else 32
    rows = table_rows(size)

    class DLRM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bottom = nn.Sequential(nn.Linear(DENSE, 64), nn.ReLU(), nn.Linear(64, dim), nn.ReLU())
            self.tables = nn.ModuleList(nn.EmbeddingBag(r, dim, mode="sum", sparse=True) for r in rows)
            for t in self.tables:
                nn.init.normal_(t.weight, std=0.05)
            n = TABLES + 1
            pairs = torch.triu_indices(n, n, 1)
            self.register_buffer("pairs", pairs[0] * n + pairs[1], persistent=False)
            self.top = nn.Sequential(nn.Linear(dim + len(self.pairs), 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                                     nn.Linear(64, 1))

        def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
            x = self.bottom(dense)
            z = torch.stack([x, *(t(sparse[:, i]) for i, t in enumerate(self.tables))], 1)  # (B, 27, dim)
            dots = torch.bmm(z, z.transpose(1, 2)).flatten(1)[:, self.pairs]  # each pair of vectors once
            return torch.sigmoid(self.top(torch.cat([x, dots], 1)))

    return DLRM().eval()


def build():
    """The DLRM with over a million table rows (a `package.module:factory` for `model:`)."""
    return _dlrm("full")


def build_small():
    """The same architecture at test size."""
    return _dlrm("small")


def inputs(size: str) -> list[dict]:
    """The `inputs:` of a profile for this model."""
    return [{"name": "dense", "dtype": "float32", "shape": ["batch", DENSE]},
            {"name": "sparse", "dtype": "int64", "shape": ["batch", TABLES, BAG], "range": [0, min(table_rows(size))]}]


class ClickLog:
    """Requests and clicks from a planted model: each table's ids are Zipf-distributed and carry a hidden effect,
    dense features a linear one; a click is drawn with the sigmoid of their sum."""

    def __init__(self, size: str, seed: int = 0) -> None:
        self.rows = table_rows(size)
        rng = np.random.default_rng(seed)
        self.effects = [rng.normal(0, 0.6, r) for r in self.rows]
        self.w = rng.normal(0, 0.3, DENSE)

    def draw(self, n: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        dense = rng.normal(0, 1, (n, DENSE)).astype(np.float32)
        sparse = np.stack([(rng.zipf(1.15, (n, BAG)) - 1) % r for r in self.rows], 1).astype(np.int64)
        logit = dense @ self.w - 1.0 + sum(self.effects[t][sparse[:, t]].mean(1) for t in range(TABLES))
        clicks = rng.random(n) < 1 / (1 + np.exp(-logit))
        return {"dense": dense, "sparse": sparse, "labels": clicks.astype(np.int64)}


def train(model, log: dict[str, np.ndarray], epochs: int = 2, batch: int = 256, seed: int = 0) -> None:
    """Binary cross-entropy; SparseAdam for the tables (only the rows a batch touches), Adam for the MLPs."""
    import torch

    torch.manual_seed(seed)
    tables = [p for n, p in model.named_parameters() if n.startswith("tables.")]
    dense_params = [p for n, p in model.named_parameters() if not n.startswith("tables.")]
    opts = [torch.optim.SparseAdam(tables, lr=0.02), torch.optim.Adam(dense_params, lr=2e-3)]
    x, s, y = (torch.from_numpy(log[k]) for k in ("dense", "sparse", "labels"))
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(batch):
            loss = torch.nn.functional.binary_cross_entropy(model(x[idx], s[idx]).squeeze(1), y[idx].float())
            for o in opts:
                o.zero_grad()
            loss.backward()
            for o in opts:
                o.step()
    model.eval()


def make_files(out: Path, size: str = "full", n_train: int = 60_000, n_calib: int = 512, n_val: int = 4_096,
               epochs: int = 2) -> dict[str, Path | float]:
    """Trained weights (safetensors + .sha256), calib.npz and val.npz (with labels) in `out`; the held-out AUC."""
    import torch
    from safetensors.torch import save_file
    from sklearn.metrics import roc_auc_score

    from ..provenance import sha256_file

    out.mkdir(parents=True, exist_ok=True)
    log = ClickLog(size)
    torch.manual_seed(1234)
    model = _dlrm(size)
    train(model, log.draw(n_train, seed=1), epochs=epochs)
    calib, val = log.draw(n_calib, seed=2), log.draw(n_val, seed=3)
    with torch.inference_mode():
        p = model(torch.from_numpy(val["dense"]), torch.from_numpy(val["sparse"])).squeeze(1).numpy()
    weights = out / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    weights.with_suffix(".safetensors.sha256").write_text(f"{sha256_file(weights)}  {weights.name}\n")
    np.savez(out / "calib.npz", **calib)
    np.savez(out / "val.npz", **val)
    return {"weights": weights, "calib": out / "calib.npz", "val": out / "val.npz",
            "val_auc": float(roc_auc_score(val["labels"], p))}


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the DLRM on a planted click log and write its weights and "
                                             "labelled data (what a user brings) for params/dlrm.yaml.")
    ap.add_argument("out", type=Path, help="folder to write weights.safetensors, calib.npz and val.npz into")
    ap.add_argument("--size", choices=["small", "full"], default="full", help="test size or over a million rows")
    ap.add_argument("--train", type=int, default=60_000, help="training requests")
    args = ap.parse_args()
    for name, value in make_files(args.out, size=args.size, n_train=args.train).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
