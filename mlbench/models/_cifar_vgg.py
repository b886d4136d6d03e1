"""VGG with BatchNorm for small images (CIFAR), configs 'A' (vgg11_bn) and 'D' (vgg16_bn).

Features: 3x3 convs (padding 1), each followed by BatchNorm and ReLU, and 2x2 max
pools with ``ceil_mode=True`` (as in ShrinkBench's CIFAR VGG) so that 28x28 and even
8x8 inputs survive the five pools. Then AdaptiveAvgPool2d(1) (a no-op at 32x32,
where the features are already 512 x 1 x 1) and the classifier chosen here:
Linear(512, 512) - ReLU - Linear(512, num_classes). That is the hidden layer of
ShrinkBench's ``vgg_bn_drop`` head without its Dropout and BatchNorm1d, so the
forward pass is deterministic and works on a batch of one.
"""

from __future__ import annotations

import torch
from torch import nn

from mlbench.models._registry import register_model

# Output channels of each 3x3 conv; "M" is a 2x2 max pool (Simonyan & Zisserman, table 1).
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class CifarVGG(nn.Module):
    """VGG features (conv-BN-ReLU, max pools) - global avg pool - 512-512-classes head."""

    def __init__(self, config: str, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.features = _features(CONFIGS[config], input_shape[0])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # (B, 512, 1, 1)
        return self.classifier(torch.flatten(x, 1))


def _features(config: list[int | str], in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            assert isinstance(item, int)
            layers += [
                nn.Conv2d(in_channels, item, kernel_size=3, padding=1),
                nn.BatchNorm2d(item),
                nn.ReLU(inplace=True),
            ]
            in_channels = item
    return nn.Sequential(*layers)


def _init_weights(model: nn.Module) -> None:
    """torchvision's VGG init: Kaiming (fan_out) convs, N(0, 0.01) linears, zero biases."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


@register_model("vgg11_bn")
def vgg11_bn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR VGG-11 with BatchNorm (config 'A', 8 convs)."""
    return CifarVGG("A", input_shape, num_classes)


@register_model("vgg16_bn")
def vgg16_bn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR VGG-16 with BatchNorm (config 'D', 13 convs)."""
    return CifarVGG("D", input_shape, num_classes)
