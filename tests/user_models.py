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
    """tiny_convnet, except on a node whose environment marks it broken (a fleet member that fails) or
    stalled (a member that never finishes, like a hung GPU)."""
    import os
    import time

    if os.environ.get("SCALEPROOF_TEST_BROKEN_NODE"):
        raise RuntimeError("this node is marked broken for the fleet test")
    if os.environ.get("SCALEPROOF_TEST_STALLED_NODE"):
        time.sleep(3600)
    return tiny_convnet()


# transformers' architectures built from small configs (no download), as users' factories --------------
def hf_vit():
    from transformers import ViTConfig, ViTForImageClassification

    return ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                               num_attention_heads=4, intermediate_size=64, num_labels=5))


def hf_resnet():
    from transformers import ResNetConfig, ResNetForImageClassification

    return ResNetForImageClassification(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                                     num_labels=5))


def hf_mobilenet(initializer_range: float = 0.2):
    """MobileNetV2; at transformers' default init (0.02) its random logits are ~1e-25 (a degenerate
    reference, see hf_mobilenet_default_init), at 0.2 they are ~0.04."""
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    return MobileNetV2ForImageClassification(MobileNetV2Config(image_size=32, depth_multiplier=0.35, num_labels=5,
                                                               initializer_range=initializer_range))


def hf_mobilenet_default_init():
    return hf_mobilenet(initializer_range=0.02)


class OutlierEncoder(nn.Module):
    """The small sentence encoder with a projection whose INT8 collapses, as trained transformers' outlier
    features make it: `amplify` copies the pooled features and adds one at ~1e3 that `head` ignores, so a
    per-tensor INT8 scale (~10 per step) rounds every real feature (~0.2) to zero and every embedding
    becomes the same vector."""

    def __init__(self) -> None:
        super().__init__()
        from scaleproof.examples.sentence_encoder import build_small

        self.encoder = build_small()
        width = self.encoder.bert.config.hidden_size
        self.amplify, self.head = nn.Linear(width, width + 1), nn.Linear(width + 1, width)
        with torch.no_grad():
            self.amplify.weight.zero_()
            self.amplify.weight[:width, :width] = torch.eye(width)
            self.amplify.weight[width, 0] = 1e4  # one feature, not the sum: LayerNorm makes the features sum to ~0
            self.amplify.bias.zero_()
            self.head.weight[:, width] = 0.0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.amplify(self.encoder(input_ids, attention_mask)))


def outlier_encoder() -> nn.Module:
    return OutlierEncoder()


class TinyLogits(nn.Module):
    """tiny_convnet whose logits are ~1e-21: nothing can be judged against them (FP16 underflows to zero)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_convnet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * 1e-21


def tiny_logits() -> nn.Module:
    return TinyLogits()


class IdsAndFeatures(nn.Module):
    """A recommendation-style model: int64 item ids (embedded, mean-pooled) and float features, 3 scores."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.mlp = nn.Sequential(nn.Linear(16 + 4, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.embed(input_ids).mean(1), features], dim=1))


def ids_and_features() -> nn.Module:
    return IdsAndFeatures()


class DataDependentBranch(nn.Module):
    """tiny_convnet behind a branch on the data's values, which torch.export cannot capture (the dynamo
    exporter fails) while the TorchScript tracer records the branch taken (always the same one here)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_convnet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() >= 0:
            return self.net(x)
        return -self.net(x)


def data_dependent_branch() -> nn.Module:
    return DataDependentBranch()


class TwoHeads(nn.Module):
    """tiny_convnet's 5 scores and the 32 pooled features it computes them from, as a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_convnet()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net[:-1](x)
        return self.net[-1](features), features


def two_heads() -> nn.Module:
    return TwoHeads()


def embedding_bags() -> nn.Module:
    """Two EmbeddingBag tables (sum with a padding id, mean) over fixed-length bags of int64 ids, and a linear head."""

    class Bags(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clicks = nn.EmbeddingBag(3000, 8, mode="sum", padding_idx=0)
            self.topics = nn.EmbeddingBag(500, 8, mode="mean")
            self.head = nn.Linear(16, 1)

        def forward(self, clicked: torch.Tensor, topics: torch.Tensor) -> torch.Tensor:
            return self.head(torch.cat([self.clicks(clicked), self.topics(topics)], 1))

    return Bags()
