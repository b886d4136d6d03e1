"""uint8 pixels -> normalized float32, as one multiply-add with precomputed constants."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Normalize:
    """``(x / 255 - mean) / std`` for uint8 batches, fused into ``x * scale + shift``.

    Args:
        mean: per-channel mean of the pixels scaled to [0, 1].
        std: per-channel standard deviation of the pixels scaled to [0, 1].
        device: where the batches live.

    Example:
        >>> norm = Normalize((0.5,), (0.25,), torch.device("cpu"))
        >>> norm(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8))[0, 0, 0, 0].item()
        2.0
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device) -> None:
        if len(mean) != len(std) or min(std) <= 0:
            raise ValueError(f"need one positive std per mean, got mean={mean} std={std}")
        m = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.scale = (1 / (255 * s)).to(device, torch.float32)  # (1, C, 1, 1)
        self.shift = (-m / s).to(device, torch.float32)  # (1, C, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) uint8 -> (B, C, H, W) float32, normalized."""
        return x.float().mul_(self.scale).add_(self.shift)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of uint8 images (N, C, H, W), pixels scaled to [0, 1].

    Counts each channel's 256 pixel values instead of converting the images to float,
    so the memory it needs does not grow with the dataset.
    """
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1).cpu(), minlength=256).double()
        mean = (counts * values).sum() / counts.sum()
        var = (counts * (values - mean) ** 2).sum() / counts.sum()
        means.append(float(mean))
        stds.append(max(float(var.sqrt()), 1e-3))  # a constant channel must not divide by 0
    return tuple(means), tuple(stds)
