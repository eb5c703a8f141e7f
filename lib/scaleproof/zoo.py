"""Models by name: built-in `zoo:NAME` entries, or a user's `package.module:factory`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ArtifactError, ParamsError
from .paths import data_dir
from .provenance import sha256_file


@dataclass
class ModelBundle:
    """A model in eval mode with what the pipeline needs to feed it."""

    name: str
    module: object  # torch.nn.Module; typed loosely so this module imports without torch
    input_shape: tuple[int, ...]
    dataset: str  # "digits" (labelled) or "synthetic" (agreement-only validation)
    weights: str  # where the weights came from, for the report
    input_name: str = "input"
    output_name: str = "logits"

    @property
    def has_labels(self) -> bool:
        return self.dataset != "synthetic"


def digits_cnn():
    """Conv-BN-ReLU network for 1x8x8 digits: 2 conv blocks, pool, 1 conv block, global pool, linear."""
    from torch import nn

    def block(cin: int, cout: int) -> list:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
        *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )


def digits_mobile():
    """MobileNet-style network for 1x8x8 digits: a stem conv, then depthwise-separable blocks
    (3x3 depthwise conv + 1x1 pointwise conv, each with BN and ReLU6), global pool, linear."""
    from torch import nn

    def dw_sep(cin: int, cout: int, stride: int) -> list:
        return [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()]

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
        *dw_sep(32, 64, 1), *dw_sep(64, 64, 2), *dw_sep(64, 128, 1), *dw_sep(128, 128, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )


def resnet50():
    """torchvision's ResNet-50 architecture with random weights (no download)."""
    try:
        from torchvision.models import resnet50 as tv_resnet50
    except ImportError as e:  # torchvision does not import beside every torch build
        raise ParamsError("zoo:resnet50 needs torchvision importable beside torch "
                          "(pip install torchvision matching your torch)") from e
    return tv_resnet50(weights=None)


def weights_file(name: str) -> str:
    """Shipped weights of zoo model `name`, relative to data/ (written by scripts/train_digits.py)."""
    return f"weights/{name}.safetensors"


# name -> (factory, input shape, dataset, shipped weights relative to data/ or None)
ZOO: dict[str, tuple[Callable, tuple[int, ...], str, str | None]] = {
    "digits-cnn": (digits_cnn, (1, 8, 8), "digits", weights_file("digits-cnn")),
    "digits-mobile": (digits_mobile, (1, 8, 8), "digits", weights_file("digits-mobile")),
    "resnet50": (resnet50, (3, 224, 224), "synthetic", None),
}


def load_weights(module, path: Path) -> str:
    """Load safetensors weights after checking them against the sha256 shipped beside them."""
    from safetensors.torch import load_file

    sha_path = path.with_suffix(path.suffix + ".sha256")
    if not path.is_file() or not sha_path.is_file():
        raise ArtifactError(f"weights {path} or their checksum {sha_path.name} are missing: "
                            "re-create them with `python scripts/train_digits.py --model NAME`")
    expected = sha_path.read_text().split()[0]
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"weights {path} have sha256 {actual[:12]}…, expected {expected[:12]}…: "
                            "the file changed; restore it from git or re-run scripts/train_digits.py")
    module.load_state_dict(load_file(str(path)))
    return f"{path.name} (sha256 {expected})"


def resolve_factory(spec: str) -> Callable:
    mod_name, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ParamsError(f"model {spec!r}: cannot import module {mod_name!r} ({e}); "
                          "is it on PYTHONPATH or installed?") from e
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ParamsError(f"model {spec!r}: module {mod_name!r} has no attribute {attr!r}") from None


def load_model(spec: str, input_shape: list[int] | tuple[int, ...] = ()) -> ModelBundle:
    """`zoo:NAME` or `package.module:factory` -> a model in eval mode, with its input spec."""
    import torch

    if spec.startswith("zoo:"):
        name = spec[4:]
        if name not in ZOO:
            raise ParamsError(f"unknown zoo model {name!r}: choose one of {', '.join(sorted(ZOO))}")
        factory, shape, dataset, weights = ZOO[name]
        torch.manual_seed(0)  # architectures without shipped weights get the same random init everywhere
        module = factory()
        origin = load_weights(module, data_dir() / weights) if weights else "random init (torch.manual_seed(0))"
        if input_shape and tuple(input_shape) != shape:
            raise ParamsError(f"zoo:{name} takes input_shape {list(shape)}, not {list(input_shape)}")
    else:
        if not input_shape:
            raise ParamsError(f"model {spec!r} is not in the zoo: give its input_shape without the batch "
                              "axis, e.g. input_shape: [3, 32, 32]")
        factory = resolve_factory(spec)
        torch.manual_seed(0)
        module = factory()
        if not isinstance(module, torch.nn.Module):
            raise ParamsError(f"model {spec!r}: factory returned {type(module).__name__}, not a torch.nn.Module")
        shape, dataset, origin = tuple(input_shape), "synthetic", f"{spec}() with torch.manual_seed(0)"
    module.eval()
    return ModelBundle(name=spec, module=module, input_shape=tuple(shape), dataset=dataset, weights=origin)
