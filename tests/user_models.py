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


class PlantedOutlier(nn.Module):
    """A layer whose INT8 quantization breaks accuracy: `amplify` copies 16 pooled features and adds a
    17th at ~1e4 that the head ignores (zero weight). The head's input range is then ~1e4, so one
    per-tensor INT8 scale (~80 per step) rounds the 16 real features to zero; quantizing any other
    node alone costs nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.amplify = nn.Linear(16, 17)
        self.head = nn.Linear(17, 5)
        with torch.no_grad():
            self.amplify.weight.zero_()
            self.amplify.weight[:16, :16] = torch.eye(16)
            self.amplify.weight[16, :] = 1e4
            self.amplify.bias.zero_()
            self.head.weight[:, 16] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.amplify(self.features(x)))


def planted_outlier() -> nn.Module:
    return PlantedOutlier()


def tiny_unless_marked_node() -> nn.Module:
    """tiny_convnet, except on a node whose environment marks it broken (a fleet member that fails)."""
    import os

    if os.environ.get("SCALEPROOF_TEST_BROKEN_NODE"):
        raise RuntimeError("this node is marked broken for the fleet test")
    return tiny_convnet()
