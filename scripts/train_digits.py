"""Re-create shipped digits weights: `python scripts/train_digits.py [--model digits-cnn] [--out data]`.

Trains `zoo:digits-cnn` (or `zoo:digits-mobile`, the depthwise-separable one) on the `train` split of scikit-learn's digits (seeded, single thread, CPU),
reports top-1 on the held-out `val` split, and writes the weights as safetensors with their sha256.
The same torch version reproduces the same bytes; another version may differ in the last bits,
which is why the checksum file is written beside the weights and checked at every load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from scaleproof.datasets import digits_splits
from scaleproof.provenance import sha256_file
from scaleproof.zoo import ZOO, weights_file


def top1(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    digits_models = sorted(n for n, entry in ZOO.items() if entry[2] == "digits")
    ap.add_argument("--model", choices=digits_models, default="digits-cnn", help="zoo model to train")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data",
                    help="data folder to write weights/MODEL.safetensors into")
    ap.add_argument("--epochs", type=int, default=40, help="training epochs")
    ap.add_argument("--seed", type=int, default=0, help="torch seed for init and shuffling")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    splits = digits_splits()
    x, y = torch.from_numpy(splits["train"].x), torch.from_numpy(splits["train"].y)
    model = ZOO[args.model][0]()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs * ((len(x) + 63) // 64))
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}  val top-1 {top1(model, splits['val'].x, splits['val'].y):.4f}")
    acc = top1(model, splits["val"].x, splits["val"].y)
    if acc < 0.97:
        raise SystemExit(f"val top-1 {acc:.4f} is below the 0.97 the zoo promises; not writing weights")
    path = args.out / weights_file(args.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    digest = sha256_file(path)
    path.with_suffix(path.suffix + ".sha256").write_text(f"{digest}  {path.name}\n")
    print(f"val top-1 {acc:.4f} on {len(splits['val'])} held-out digits; wrote {path} (sha256 {digest})")


if __name__ == "__main__":
    main()
