"""Gradient-magnitude pruning: score = |w * dL/dw|, L summed over fixed training batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlbench.strategies._registry import Batch, register_strategy


# Decorators apply bottom-up: the global variant registers first.
@register_strategy("layer_grad", allocation="layer")
@register_strategy("global_grad", allocation="global")
def weight_times_gradient(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """|w * dL/dw| with L the cross-entropy accumulated over ``batches``.

    The model runs in eval mode (BatchNorm uses its running statistics, dropout is off)
    so scoring is deterministic and changes nothing: gradients come from
    ``torch.autograd.grad``, never ``.grad``, and no buffer is updated.
    """
    if not batches:
        raise ValueError("gradient scores need at least one training batch")
    was_training = model.training
    model.eval()
    names, tensors = list(params), list(params.values())
    grads: list[Tensor] = []
    try:
        for x, y in batches:
            loss = F.cross_entropy(model(x).flatten(0, -2), y.flatten(), reduction="sum")
            step = list(torch.autograd.grad(loss, tensors))  # fresh tensors, ours to reuse
            if grads:
                torch._foreach_add_(grads, step)
            else:
                grads = step
    finally:
        model.train(was_training)
    # |w * g| in place in the gradient buffers: no further copies
    torch._foreach_mul_(grads, [t.detach() for t in tensors])
    torch._foreach_abs_(grads)
    return dict(zip(names, grads, strict=True))
