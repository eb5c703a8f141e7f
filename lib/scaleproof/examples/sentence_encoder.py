"""A sentence-embedding encoder shaped like the ones platform teams serve (MiniLM-L6 size: 6 layers,
hidden 384, BERT's 30,522-token vocabulary): transformers' BertModel built from a config (no
download), mean-pooled over the attention mask and L2-normalized, taking int64 `input_ids` and
`attention_mask` of shape [batch, seq].

`make_files` writes what a user would bring: seeded weights (random init: no pretrained weights can
be fetched here) as safetensors, and calibration and validation samples as .npz files of token ids
whose lengths vary, so the attention mask has padding.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SEQ = 64


def config(small: bool = False, base: bool = False):
    from transformers import BertConfig

    if base:  # BERT-base size: 12 layers, hidden 768, 12 heads, 3,072 intermediate
        return BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                          intermediate_size=3072, max_position_embeddings=512)
    if small:  # for tests: the same architecture, a few thousand times less work
        return BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=SEQ)
    return BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536, max_position_embeddings=512)


def _encoder(small: bool, base: bool = False):
    import torch
    from torch import nn
    from transformers import BertModel

    class SentenceEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(config(small, base), add_pooling_layer=False)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return SentenceEncoder().eval()


def build():
    """The MiniLM-sized encoder (a `package.module:factory` for `model:`)."""
    return _encoder(small=False)


def build_base():
    """A BERT-base-sized encoder (a `package.module:factory`): without a weights file the loader seeds its random
    init (torch.manual_seed(0)), so every process builds the same weights; for params/bert-base-h100.yaml."""
    return _encoder(small=False, base=True)


def build_small():
    """The same architecture at test size."""
    return _encoder(small=True)


def token_batches(n: int, vocab: int, seq: int = SEQ, seed: int = 0) -> dict[str, np.ndarray]:
    """`n` token sequences: [CLS] … [SEP] with Zipf-distributed ids (frequent tokens are common, as in
    text), lengths between 8 and `seq`, zero-padded, with their attention mask."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, seq), np.int64)
    mask = np.zeros((n, seq), np.int64)
    for i, length in enumerate(rng.integers(8, seq + 1, n)):
        body = 1000 + (rng.zipf(1.3, length - 2) % (vocab - 1000)) if vocab > 2000 else rng.integers(3, vocab, length - 2)
        ids[i, :length] = [101, *body, 102] if vocab > 2000 else [1, *body, 2]
        mask[i, :length] = 1
    return {"input_ids": ids, "attention_mask": mask}


def make_files(out: Path, n_calib: int = 256, n_val: int = 256, small: bool = False) -> dict[str, Path]:
    """Weights (safetensors + .sha256), calib.npz and val.npz in `out`."""
    import torch
    from safetensors.torch import save_file

    from ..provenance import sha256_file

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1234)
    model = _encoder(small)
    weights = out / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    weights.with_suffix(".safetensors.sha256").write_text(f"{sha256_file(weights)}  {weights.name}\n")
    vocab = config(small).vocab_size
    np.savez(out / "calib.npz", **token_batches(n_calib, vocab, seed=1))
    np.savez(out / "val.npz", **token_batches(n_val, vocab, seed=2))
    return {"weights": weights, "calib": out / "calib.npz", "val": out / "val.npz"}


def main() -> None:
    ap = argparse.ArgumentParser(description="Write the sentence encoder's weights and token data (what a user "
                                             "brings) for params/transformer.yaml.")
    ap.add_argument("out", type=Path, help="folder to write weights.safetensors, calib.npz and val.npz into")
    ap.add_argument("--small", action="store_true", help="the test-size model instead of the MiniLM-sized one")
    args = ap.parse_args()
    for name, path in make_files(args.out, small=args.small).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
