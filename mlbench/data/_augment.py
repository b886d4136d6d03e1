"""Batched training augmentation on uint8 tensors: no per-sample Python.

An augmentation draws its per-sample parameters for a whole epoch at once from a CPU
generator (``draw``), then applies a batch's slice of them on the device (``__call__``).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F


class Augmentation(Protocol):
    """Random per-sample transform applied to whole batches."""

    def draw(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Parameters for ``n`` samples, shaped (n, k), drawn from ``generator``, on ``device``."""
        ...

    def __call__(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Transform a (B, C, H, W) uint8 batch with its (B, k) parameters."""
        ...


class CropFlip:
    """Random crop with ``pad`` pixels of zero padding, then random horizontal flip.

    The CIFAR standard (``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()``), done
    as one gather over the padded batch: the flip is folded into the column index.

    Example:
        >>> aug = CropFlip(pad=4)
        >>> x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
        >>> params = aug.draw(2, torch.Generator().manual_seed(0), torch.device("cpu"))
        >>> aug(x, params).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, pad: int = 4) -> None:
        self.pad = pad

    def draw(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """(n, 3) int64: row offset, column offset (both in [0, 2 * pad]), flip (0 or 1)."""
        offsets = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=generator)
        flips = torch.randint(0, 2, (n, 1), generator=generator)
        return torch.cat([offsets, flips], dim=1).to(device)

    def __call__(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Crop and flip each image of ``x`` (B, C, H, W) by its row of ``params`` (B, 3)."""
        b, c, h, w = x.shape
        padded = F.pad(x, (self.pad,) * 4)  # (B, C, H + 2p, W + 2p), zeros around
        rows = params[:, :1] + torch.arange(h, device=x.device)  # (B, H)
        cols = torch.arange(w, device=x.device).expand(b, w)  # (B, W)
        cols = torch.where(params[:, 2:].bool(), w - 1 - cols, cols) + params[:, 1:2]
        flat = rows[:, :, None] * (w + 2 * self.pad) + cols[:, None, :]  # (B, H, W)
        flat = flat.view(b, 1, h * w).expand(b, c, h * w)
        return padded.view(b, c, -1).gather(2, flat).view(b, c, h, w)
