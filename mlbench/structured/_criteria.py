"""Channel importance criteria, registered by name with their allocation.

A criterion scores the channels of every group of a traced model copy (higher =
keep). It may run the model on the fixed scoring batches, never on anything else,
and works on a copy, so the caller's model is untouched. Scores are Torch-Pruning's
group importances: the per-layer scores of every layer in the group, averaged, then
divided by their mean within the group so that one global threshold can compare
groups of different sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import Tensor, nn

from mlbench.masks import ALLOCATIONS
from mlbench.registry import Registry

Batch = tuple[Tensor, Tensor]
# (model copy, Torch-Pruning's group of every channel group, batches)
#   -> scores per group (None: the criterion has nothing to say about that group)
Criterion = Callable[
    [nn.Module, Sequence[tp.dependency.Group], Sequence[Batch]], list[Tensor | None]
]

CHANNEL_STRATEGIES: Registry[Criterion] = Registry("channel strategy")


def register_channel_strategy(name: str, *, allocation: str) -> Callable[[Criterion], Criterion]:
    """Register a channel criterion as strategy ``name`` with ``global`` or ``layer`` allocation."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    return CHANNEL_STRATEGIES.register(name, allocation=allocation)


def channel_strategy_names() -> list[str]:
    """Registered channel strategy names."""
    return CHANNEL_STRATEGIES.names()


def _group_scores(
    importance: tp.importance.Importance, groups: Sequence[tp.dependency.Group]
) -> list[Tensor | None]:
    scores: list[Tensor | None] = []
    for group in groups:
        score = importance(group)
        scores.append(None if score is None else score.detach().float().cpu())
    return scores


@register_channel_strategy("layer_l1_channel", allocation="layer")
@register_channel_strategy("global_l1_channel", allocation="global")
def l1_filter_norm(
    model: nn.Module,
    groups: Sequence[tp.dependency.Group],
    batches: Sequence[Batch],
) -> list[Tensor | None]:
    """L1 norm of each channel's filters (Li et al. 2017), over every layer of the group."""
    return _group_scores(tp.importance.GroupMagnitudeImportance(p=1), groups)


@register_channel_strategy("layer_bn_channel", allocation="layer")
@register_channel_strategy("global_bn_channel", allocation="global")
def batchnorm_scale(
    model: nn.Module,
    groups: Sequence[tp.dependency.Group],
    batches: Sequence[Batch],
) -> list[Tensor | None]:
    """|gamma| of the group's BatchNorms (network slimming, Liu et al. 2017).

    Groups without a BatchNorm get no score and keep all their channels.
    """
    return _group_scores(tp.importance.BNScaleImportance(), groups)


@register_channel_strategy("layer_taylor_channel", allocation="layer")
@register_channel_strategy("global_taylor_channel", allocation="global")
def first_order_taylor(
    model: nn.Module,
    groups: Sequence[tp.dependency.Group],
    batches: Sequence[Batch],
) -> list[Tensor | None]:
    """sum |w * dL/dw| over each channel's weights (Molchanov et al. 2019).

    L is the cross-entropy summed over ``batches``, with the model in eval mode
    (running BatchNorm statistics), so the scores are deterministic.
    """
    if not batches:
        raise ValueError("Taylor scores need at least one training batch")
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        with torch.enable_grad():
            for x, y in batches:
                F.cross_entropy(model(x).flatten(0, -2), y.flatten(), reduction="sum").backward()
        return _group_scores(tp.importance.GroupTaylorImportance(), groups)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)

