"""Pruning-at-initialization and layer-adaptive criteria: SNIP, GraSP, SynFlow, LAMP.

Each is one scoring function under the registry's contract (higher score = keep),
works on the caller's model without changing it, and is allocated globally, as in
its paper.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlbench.strategies._registry import Batch, register_strategy

GRASP_TEMPERATURE = 200.0  # GraSP's softmax temperature (Wang et al. 2020, their code)


@register_strategy("snip", allocation="global")
def snip(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Connection sensitivity |dL/dc| at c = 1, i.e. |w * dL/dw| / sum (Lee et al. 2019).

    L is the cross-entropy (mean) of the first batch only, as in the paper, with the
    model in eval mode; scores are normalized to sum to 1 over all prunable weights.
    """
    if not batches:
        raise ValueError("SNIP needs at least one training batch")
    names, tensors = list(params), list(params.values())
    was_training = model.training
    model.eval()
    try:
        x, y = batches[0]
        grads = torch.autograd.grad(F.cross_entropy(model(x).flatten(0, -2), y.flatten()), tensors)
    finally:
        model.train(was_training)
    scores = [(g * t.detach()).abs() for g, t in zip(grads, tensors, strict=True)]
    total = sum(s.sum() for s in scores)
    return {n: s / total for n, s in zip(names, scores, strict=True)}


@register_strategy("grasp", allocation="global")
def grasp(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Gradient signal preservation: keep the weights with the largest w * (H g) (Wang et al.).

    GraSP removes the largest S = -w * Hg, so the score to keep is -S = w * Hg, with g
    the gradient of the cross-entropy over ``batches`` at softmax temperature 200 and
    Hg its Hessian-vector product (double backward). Eval mode, nothing changed.
    """
    if not batches:
        raise ValueError("GraSP needs at least one training batch")
    names, tensors = list(params), list(params.values())
    was_training = model.training
    model.eval()
    try:
        g: list[Tensor] = []
        for x, y in batches:  # g summed over the batches, without a graph
            loss = F.cross_entropy((model(x) / GRASP_TEMPERATURE).flatten(0, -2), y.flatten(),
                                   reduction="sum")
            step = torch.autograd.grad(loss, tensors)
            g = [a + b for a, b in zip(g, step, strict=True)] if g else list(step)
        hg: list[Tensor] = []
        for x, y in batches:  # Hg = d(g_const . dL/dw)/dw, per batch
            loss = F.cross_entropy((model(x) / GRASP_TEMPERATURE).flatten(0, -2), y.flatten(),
                                   reduction="sum")
            grad = torch.autograd.grad(loss, tensors, create_graph=True)
            z = sum((a * b.detach()).sum() for a, b in zip(grad, g, strict=True))
            step = torch.autograd.grad(z, tensors)
            hg = [a + b for a, b in zip(hg, step, strict=True)] if hg else list(step)
    finally:
        model.train(was_training)
    return {n: t.detach() * h for n, t, h in zip(names, tensors, hg, strict=True)}


@register_strategy("synflow", allocation="global")
def synflow(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Synaptic flow |w * dR/dw|, R = sum of the outputs of |model| on an all-ones input.

    Data-free (Tanaka et al. 2020): every parameter and buffer of a double-precision
    copy is replaced by its absolute value, and the input is one sample of ones shaped
    like the batches' samples. One shot: SynFlow's rounds are the iterative schedule's.
    """
    if not batches:
        raise ValueError("SynFlow needs one batch to know the input shape")
    clone = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for value in clone.state_dict().values():
            if value.is_floating_point():
                value.abs_()
    by_name = dict(clone.named_parameters())
    tensors = [by_name[n] for n in params]
    x = torch.ones(1, *batches[0][0].shape[1:], dtype=torch.float64,
                   device=batches[0][0].device)
    grads = torch.autograd.grad(clone(x).sum(), tensors)
    return {n: (g * t.detach()).abs().float()
            for n, g, t in zip(params, grads, tensors, strict=True)}


@register_strategy("lamp", allocation="global")
def lamp(
    model: nn.Module,
    params: Mapping[str, nn.Parameter],
    batches: Sequence[Batch],
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Layer-adaptive magnitude (Lee et al. 2021): w_u^2 / sum of w_v^2 over |w_v| >= |w_u|.

    Within a tensor, weights sorted by magnitude ascending, each weight's square is
    divided by the sum of its own and every larger weight's square; the largest weight
    of every tensor scores 1, so one global threshold never empties a layer.
    """
    out = {}
    for name, p in params.items():
        sq = p.detach().flatten().double() ** 2
        order = sq.argsort(stable=True)
        ranked = sq[order]
        tail = ranked.flip(0).cumsum(0).flip(0)  # sum of this and every larger square
        score = torch.empty_like(sq)
        score[order] = ranked / tail
        out[name] = score.float().view_as(p)
    return out
