"""Magnitude pruning: score = |w|."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mlbench.strategies._registry import Batch, register_strategy


# Decorators apply bottom-up: the global variant registers first.
@register_strategy("layer_weight", allocation="layer")
@register_strategy("global_weight", allocation="global")
def weight_magnitude(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """|w| for every prunable weight (needs no data); ``abs`` already returns new tensors."""
    return {name: p.detach().abs() for name, p in params.items()}
