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


def register_strategy(name: str, *, allocation: str, kind: str = "masks"
                      ) -> Callable[[Scorer], Scorer]:
    """Register ``fn`` as strategy ``name`` whose scores are allocated ``global`` or ``layer``.

    ``kind`` names the kind of pruning (``mlbench.kinds``) that runs it: ``masks``
    (unstructured) unless the scores serve a pattern (``nm``: N:M semi-structured).
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    return STRATEGIES.register(name, allocation=allocation, kind=kind)


def strategy_kind(name: str) -> str:
    """The kind of pruning (``mlbench.kinds`` name) that runs a registered scorer."""
    return STRATEGIES.meta(name)["kind"]


def strategy_allocation(name: str) -> str:
    """``global`` or ``layer`` for a registered strategy."""
    return STRATEGIES.meta(name)["allocation"]


def strategy_names() -> list[str]:
    """Registered strategy names, the paper's five baselines first."""
    return STRATEGIES.names()
