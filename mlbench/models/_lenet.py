"""Small MNIST-era nets, sized from the input shape: LeNet-5, LeNet-5-Caffe and LeNet-300-100."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mlbench.errors import ConfigError
from mlbench.models._registry import register_model


class LeNet5(nn.Module):
    """LeNet-5 style: two 5x5 convs (padding 2) with 2x2 max pools, then fc 120-84-classes.

    The padding keeps each conv size-preserving, so only the two pools shrink the
    input: a C x H x W input reaches the first fc as 16 x H//4 x W//4.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        if height < 4 or width < 4:
            raise ConfigError(
                f"lenet needs inputs of at least 4x4 pixels, got input shape {input_shape}"
            )
        self.conv1 = nn.Conv2d(channels, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5, padding=2)
        self.fc1 = nn.Linear(16 * (height // 4) * (width // 4), 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 6, H/2, W/2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 16, H/4, W/4)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet5Caffe(nn.Module):
    """LeNet-5 as in Caffe's MNIST example (the paper's "LeNet-5-Caffe"): 431,080 params on MNIST.

    Two unpadded 5x5 convs with 20 and 50 filters, each followed by a 2x2 max pool, then
    fc 500 and the classifier, ReLU after each hidden layer (as SNIP's and most PyTorch
    ports have it): a 1 x 28 x 28 input reaches fc1 as 50 x 4 x 4.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        side = min(height, width)
        if side < 16:
            raise ConfigError(
                f"lenet5_caffe needs inputs of at least 16x16 pixels, got input shape "
                f"{input_shape}"
            )
        self.conv1 = nn.Conv2d(channels, 20, kernel_size=5)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5)
        out_h, out_w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(50 * out_h * out_w, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 20, (H-4)/2, (W-4)/2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 50, 4, 4) on 28x28
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class MLP(nn.Module):
    """LeNet-300-100: flatten, then fully connected 300-100-classes with ReLU."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(math.prod(input_shape), 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


@register_model("lenet")
def lenet(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LeNet-5 for ``input_shape`` (C, H, W), H and W at least 4 (sklearn digits' 8x8 works)."""
    return LeNet5(input_shape, num_classes)


@register_model("lenet5_caffe")
def lenet5_caffe(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LeNet-5-Caffe (conv 20, conv 50, fc 500) for ``input_shape`` of at least 16x16."""
    return LeNet5Caffe(input_shape, num_classes)


@register_model("mlp")
def mlp(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LeNet-300-100 for any ``input_shape`` (C, H, W)."""
    return MLP(input_shape, num_classes)
