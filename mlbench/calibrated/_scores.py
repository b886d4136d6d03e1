"""Scores and masks of one linear layer: magnitude, Wanda, and the N:M / row / layer masks.

A weight ``W`` is (out, in), as ``nn.Linear`` holds it; a mask is bool, True = kept.
"""

from __future__ import annotations

import torch
from torch import Tensor


def magnitude_scores(weight: Tensor) -> Tensor:
    """|W|: the magnitude baseline of both papers."""
    return weight.detach().abs()


def wanda_scores(weight: Tensor, input_norms: Tensor) -> Tensor:
    """Wanda (Sun et al. 2023, eq. 1): ``S_ij = |W_ij| * ||X_j||_2``.

    Args:
        weight: (out, in).
        input_norms: (in,), the L2 norm of input feature j over every calibration token.

    Example:
        >>> wanda_scores(torch.tensor([[1.0, -2.0]]), torch.tensor([3.0, 1.0]))
        tensor([[3., 2.]])
    """
    if input_norms.shape != weight.shape[1:]:
        raise ValueError(
            f"input_norms must be ({weight.shape[1]},), got {tuple(input_norms.shape)}")
    return weight.detach().abs() * input_norms.to(weight.dtype).unsqueeze(0)


def layer_mask(scores: Tensor, sparsity: float) -> Tensor:
    """Prune the ``round(sparsity * numel)`` lowest scores of the whole matrix (ties by index).

    The comparison group of both papers' magnitude baseline: one threshold per layer.
    """
    prune = _count(scores.numel(), sparsity)
    mask = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    if prune:
        mask[_lowest(scores.flatten(), prune)] = False
    return mask.view_as(scores)


def row_mask(scores: Tensor, sparsity: float) -> Tensor:
    """Prune the ``round(sparsity * in)`` lowest scores of each output row.

    Wanda's comparison group: weights compete only with those of the same output, so
    every row keeps the same number (per-output sparsity).
    """
    out, cols = scores.shape
    prune = _count(cols, sparsity)
    mask = torch.ones_like(scores, dtype=torch.bool)
    if prune:
        idx = torch.sort(scores, dim=1, stable=True).indices[:, :prune]
        mask.scatter_(1, idx, False)
    return mask


def nm_mask(scores: Tensor, n: int, m: int) -> Tensor:
    """Keep the ``n`` highest scores of every group of ``m`` consecutive input weights.

    Raises:
        ValueError: ``in`` not a multiple of ``m``, or not ``0 < n < m``.

    Example:
        >>> nm_mask(torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 2, 4).tolist()
        [[True, False, True, False]]
    """
    out, cols = scores.shape
    if not 0 < n < m:
        raise ValueError(f"N:M needs 0 < N < M, got {n}:{m}")
    if cols % m:
        raise ValueError(f"a layer with {cols} inputs cannot be split in groups of {m}")
    groups = scores.reshape(out, cols // m, m)
    # the m - n lowest of each group are pruned; a stable sort breaks ties by position
    low = torch.sort(groups, dim=2, stable=True).indices[..., : m - n]
    mask = torch.ones_like(groups, dtype=torch.bool).scatter_(2, low, False)
    return mask.reshape(out, cols)


def _count(n: int, sparsity: float) -> int:
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return int(round(sparsity * n))


def _lowest(values: Tensor, k: int) -> Tensor:
    return torch.sort(values, stable=True).indices[:k]
