"""2:4 semi-structured magnitude pruning (NVIDIA's sparse tensor cores).

In every prunable 2-D weight whose rows split into groups of 4 (a Linear layer with
``in_features`` divisible by 4), the two smallest of each group of 4 consecutive
weights score below every other weight; everything else scores |w|. With one global
threshold, any target at or above the pattern's own compression then keeps at most
2 of every 4 weights in those layers (what ``torch.sparse.to_sparse_semi_structured``
needs) and prunes the rest by magnitude, hitting the target exactly like every
strategy. Below that compression the pattern cannot hold: ``pattern_floor`` says
where it starts, and runs check it before any work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mlbench.strategies._registry import Batch, register_strategy


def eligible(param: Tensor) -> bool:
    """A 2-D weight whose rows split into groups of 4."""
    return param.dim() == 2 and param.shape[1] % 4 == 0


def pattern_floor(model: nn.Module, prunable: Mapping[str, Tensor]) -> float:
    """The lowest compression at which ``semi_2_4`` keeps the 2:4 pattern."""
    total = sum(p.numel() for p in model.parameters())
    half = sum(p.numel() // 2 for p in prunable.values() if eligible(p))
    return total / (total - half)


@register_strategy("semi_2_4", allocation="global", kind="nm")
def two_of_four(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """|w|, with the 2 smallest of every 4 consecutive weights of eligible layers at -1."""
    out = {}
    for name, p in params.items():
        score = p.detach().abs().float()
        if eligible(p):
            groups = score.reshape(-1, 4)
            lowest = groups.argsort(dim=1, stable=True)[:, :2]  # ties: the earlier goes
            groups.scatter_(1, lowest, -1.0)
        out[name] = score
    return out
