"""Weights for a model whose classification head starts at zero (torchvision's ViT zero-initializes
`heads.head`, so with random weights every output is exactly 0 and no engine can be judged against it):
the factory's random init with every all-zero Linear layer drawn from N(0, 0.02), seeded, saved as
safetensors for the run's `weights:` parameter.

    python benchmarks/device/head_weights.py torchvision.models:vit_b_16 /tmp/vit_b_16.safetensors
"""

import argparse

import torch
from safetensors.torch import save_file

from scaleproof.zoo import resolve_factory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="package.module:factory")
    ap.add_argument("out", help="safetensors file to write")
    args = ap.parse_args()
    torch.manual_seed(0)  # the same init the chain's loader gives the architecture
    model = resolve_factory(args.model)()
    gen = torch.Generator().manual_seed(1)
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and not m.weight.detach().abs().sum():
            with torch.no_grad():
                m.weight.copy_(0.02 * torch.randn(m.weight.shape, generator=gen))
            print(f"re-initialized {name} (was all zeros)")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.out)


if __name__ == "__main__":
    main()
