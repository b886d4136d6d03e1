"""The CIFAR ResNets of He et al. 2016 (sec. 4.2), as ShrinkBench uses them.

Three stages of 16, 32 and 64 channels with n = (depth - 2) / 6 basic blocks each;
where a stage starts (stride 2, more channels) the shortcut is option A: subsample
and zero-pad channels, with no parameters, so resnet20 has 0.27M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mlbench.models._registry import register_model


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: keep every ``stride``-th pixel, zero-pad the new channels.

    A module rather than a lambda so that models pickle, deepcopy and print. After
    channel pruning (``mlbench.structured``) the padding is no longer a contiguous
    block: ``sources`` and ``placement`` then say which input channel lands in which
    output channel (output channel ``placement[i]`` = input channel ``sources[i]``,
    every other output channel zero). Both are None for the unpruned layout.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.sources: list[int] | None = None
        self.placement: list[int] | None = None

    def channel_map(self) -> tuple[list[int], list[int]]:
        """(sources, placement): input channel ``sources[i]`` goes to ``placement[i]``."""
        if self.sources is not None and self.placement is not None:
            return list(self.sources), list(self.placement)
        front = (self.out_channels - self.in_channels) // 2
        return list(range(self.in_channels)), [front + i for i in range(self.in_channels)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        if self.placement is None or self.sources is None:
            extra = self.out_channels - self.in_channels
            # F.pad pads the last dims first: (W left, W right, H top, H bottom, C front, C back).
            return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        out = x.new_zeros(x.shape[0], self.out_channels, x.shape[2], x.shape[3])
        src = torch.tensor(self.sources, dtype=torch.long, device=x.device)
        dst = torch.tensor(self.placement, dtype=torch.long, device=x.device)
        return out.index_copy(1, dst, x.index_select(1, src))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a ReLU between and after the residual sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = ZeroPadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """conv3x3(16) - 3 stages of basic blocks (16, 32, 64 ch) - global avg pool - fc.

    The global pool is adaptive, so any input size works (32x32 gives 8x8 at the end).
    Conv and Linear weights get Kaiming-normal init, as in ShrinkBench (akamaster).
    """

    def __init__(self, depth: int, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = _stage(16, 16, blocks, stride=1)
        self.layer2 = _stage(16, 32, blocks, stride=2)
        self.layer3 = _stage(32, 64, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 16, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, 64, H/4, W/4)
        x = torch.flatten(self.avgpool(x), 1)  # (B, 64)
        return self.fc(x)


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` basic blocks; only the first changes stride and channels."""
    layers = [BasicBlock(in_channels, out_channels, stride)]
    layers += [BasicBlock(out_channels, out_channels, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


@register_model("resnet20")
def resnet20(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR ResNet-20 (3 blocks per stage, 0.27M parameters)."""
    return CifarResNet(20, input_shape, num_classes)


@register_model("resnet32")
def resnet32(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR ResNet-32 (5 blocks per stage, 0.46M parameters)."""
    return CifarResNet(32, input_shape, num_classes)


@register_model("resnet44")
def resnet44(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR ResNet-44 (7 blocks per stage, 0.66M parameters)."""
    return CifarResNet(44, input_shape, num_classes)


@register_model("resnet56")
def resnet56(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR ResNet-56 (9 blocks per stage, 0.85M parameters)."""
    return CifarResNet(56, input_shape, num_classes)


@register_model("resnet110")
def resnet110(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """CIFAR ResNet-110 (18 blocks per stage, 1.7M parameters)."""
    return CifarResNet(110, input_shape, num_classes)
