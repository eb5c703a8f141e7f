"""Models defined outside the zoo, loaded by tests as `tests.user_models:FACTORY`."""

import torch
from torch import nn


def tiny_convnet() -> nn.Module:
    """A user's own model: depthwise-separable convolutions on 3x16x16 inputs, 5 classes."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 5),
    )


def broken() -> nn.Module:
    """A factory that raises, as a user's buggy model code would."""
    raise RuntimeError("this factory is broken on purpose")


def not_a_module():
    return torch.zeros(3)
