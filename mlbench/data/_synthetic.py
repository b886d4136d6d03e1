"""A learnable synthetic dataset of any shape: one random prototype per class, plus noise."""

from __future__ import annotations

import torch

SEED = 0  # the same images for every run
NOISE = 64.0  # std of the per-pixel Gaussian noise, in uint8 units


def make_synthetic(
    shape: tuple[int, int, int], classes: int, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (uint8, (n, *shape)) and labels (int64, (n,)), always the same ones.

    Each image is its class's uniform-random prototype plus Gaussian noise, clamped to
    0..255; the labels are balanced (each class within one of ``n / classes``).

    Example:
        >>> x, y = make_synthetic((1, 4, 4), 3, 6)
        >>> x.dtype, tuple(x.shape), sorted(y.tolist())
        (torch.uint8, (6, 1, 4, 4), [0, 0, 1, 1, 2, 2])
    """
    g = torch.Generator().manual_seed(SEED)
    prototypes = torch.randint(0, 256, (classes, *shape), generator=g).float()
    labels = (torch.arange(n) % classes)[torch.randperm(n, generator=g)]
    images = torch.empty((n, *shape), dtype=torch.uint8)
    chunk = max(1, 2**22 // prototypes[0].numel())  # bounds the float temporaries
    for start in range(0, n, chunk):
        y = labels[start : start + chunk]
        noise = torch.randn((len(y), *shape), generator=g).mul_(NOISE)
        images[start : start + chunk] = noise.add_(prototypes[y]).round_().clamp_(0, 255)
    return images, labels
