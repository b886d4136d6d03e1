"""Random pruning: seeded uniform scores, so the target compression is hit exactly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mlbench.strategies._registry import Batch, register_strategy


@register_strategy("random", allocation="global")
def random_scores(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Uniform [0, 1) scores drawn from ``generator`` (CPU), one per weight."""
    return {name: torch.rand(p.shape, generator=generator) for name, p in params.items()}
