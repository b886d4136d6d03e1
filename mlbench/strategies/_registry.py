"""The strategy registry and the scorer contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from mlbench.masks import ALLOCATIONS
from mlbench.registry import Registry

Batch = tuple[Tensor, Tensor]
# (model, prunable params by name, fixed training batches, seeded generator) -> scores
Scorer = Callable[
    [nn.Module, Mapping[str, nn.Parameter], Sequence[Batch], torch.Generator], dict[str, Tensor]
]

STRATEGIES: Registry[Scorer] = Registry("strategy")


def register_strategy(name: str, *, allocation: str) -> Callable[[Scorer], Scorer]:
    """Register ``fn`` as strategy ``name`` whose scores are allocated ``global`` or ``layer``."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    return STRATEGIES.register(name, allocation=allocation)


def strategy_allocation(name: str) -> str:
    """``global`` or ``layer`` for a registered strategy."""
    return STRATEGIES.meta(name)["allocation"]


def strategy_names() -> list[str]:
    """Registered strategy names, the paper's five baselines first."""
    return STRATEGIES.names()
