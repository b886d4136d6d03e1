"""Channel groups, how many channels each keeps, and the parameter and MAC counts that follow.

A *group* is Torch-Pruning's set of coupled channels: the output channels of one or
more layers (all convs that write into one residual stream, say) together with the
input channels of every layer that reads them and the BatchNorms between. Removing
channel c of a group removes it everywhere in the group, so the network stays
consistent. A *plan* says how many channels each group loses; the scores say which.

Counts are predicted without touching the model: a conv or linear layer keeps
(out kept) x (in kept) of its weights and MACs, a depthwise conv and a norm layer
(out kept). The compression search runs on these predictions, and the surgery's
result is checked against them in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import Tensor, nn

from mlbench.errors import ConfigError


@dataclass(frozen=True)
class Item:
    """One layer touched by a group: its name, which side, features per group channel."""

    module: str
    out: bool
    per_channel: float


@dataclass(frozen=True)
class Group:
    """Coupled channels rooted at layer ``root`` (its output channels).

    ``full`` is Torch-Pruning's group over all the channels, for the importance criteria.
    """

    root: str
    channels: int
    items: tuple[Item, ...]
    full: tp.dependency.Group = field(compare=False, repr=False)


def channel_groups(
    graph: tp.DependencyGraph, model: nn.Module, classifier: str | None
) -> list[Group]:
    """Every prunable group of ``model`` (the classifier's outputs are never removed)."""
    names = {m: n for n, m in model.named_modules()}
    ignored = [dict(model.named_modules())[classifier]] if classifier else []
    groups = []
    for group in graph.get_all_groups(ignored_layers=ignored):
        root = group[0].dep.target.module
        channels = len(group[0].idxs)
        seen: dict[tuple[str, bool], float] = {}
        for dep, idxs in group:
            module = dep.target.module
            if not isinstance(module, nn.Module) or module not in names:
                continue
            out = graph.is_out_channel_pruning_fn(dep.handler)
            key = (names[module], out)
            seen[key] = max(seen.get(key, 0.0), len(idxs) / channels)
        items = tuple(Item(name, out, k) for (name, out), k in seen.items())
        groups.append(Group(names[root], channels, items, group))
    return groups


def removal(groups: Sequence[Group], counts: Sequence[int]) -> dict[tuple[str, bool], float]:
    """Features removed per (layer, side) when group i loses ``counts[i]`` channels."""
    out: dict[tuple[str, bool], float] = {}
    for group, k in zip(groups, counts, strict=True):
        for item in group.items:
            key = (item.module, item.out)
            out[key] = out.get(key, 0.0) + k * item.per_channel
    return out


def _fractions(module: nn.Module, name: str, gone: Mapping[tuple[str, bool], float]
               ) -> tuple[float, float] | None:
    """(kept fraction of outputs, of inputs) of a layer, or None for other layers."""
    if isinstance(module, nn.modules.conv._ConvNd):
        out_n, in_n = module.out_channels, module.in_channels
        if module.transposed:
            out_n, in_n = in_n, out_n
    elif isinstance(module, nn.Linear):
        out_n, in_n = module.out_features, module.in_features
    elif isinstance(module, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm):
        n = module.weight.numel() if module.weight is not None else 1
        return 1 - gone.get((name, True), 0.0) / n, 1.0
    else:
        return None
    fo = 1 - gone.get((name, True), 0.0) / out_n
    depthwise = isinstance(module, nn.modules.conv._ConvNd) and module.groups == in_n > 1
    fi = 1.0 if depthwise else 1 - gone.get((name, False), 0.0) / in_n
    return fo, fi


def predict_params(model: nn.Module, gone: Mapping[tuple[str, bool], float]) -> int:
    """Parameters of ``model`` after removing ``gone`` features (see ``removal``)."""
    total = 0.0
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        fractions = _fractions(module, name, gone)
        for pname, p in own:
            if fractions is None:
                total += p.numel()
            elif pname == "weight" and p.dim() > 1:
                total += p.numel() * fractions[0] * fractions[1]
            else:  # bias, norm weight: one per output channel
                total += p.numel() * fractions[0]
    return round(total)


def predict_macs(
    model: nn.Module, macs: Mapping[str, int], gone: Mapping[tuple[str, bool], float]
) -> dict[str, float]:
    """Per-layer MACs after the removal, for conv, linear and norm layers (from ``macs``)."""
    out = {}
    for name, module in model.named_modules():
        fractions = _fractions(module, name, gone)
        if fractions is not None and name in macs:
            out[name] = macs[name] * fractions[0] * fractions[1]
    return out


def layer_counts(groups: Sequence[Group], scored: Sequence[bool], fraction: float) -> list[int]:
    """Layer allocation: every scored group loses round(fraction x channels), keeping one."""
    return [min(round(fraction * g.channels), g.channels - 1) if s else 0
            for g, s in zip(groups, scored, strict=True)]


def global_counts(scores: Sequence[Tensor | None], n: int) -> list[int]:
    """Global allocation: the ``n`` lowest (normalized) scores overall are removed.

    Every group keeps at least one channel; ties go to the earlier group and channel.
    """
    flat, owner = [], []
    for i, s in enumerate(scores):
        if s is not None and s.numel() > 1:
            ranked = s.sort(stable=True).values[: s.numel() - 1]  # the best channel stays
            flat.append(ranked)
            owner.append(torch.full_like(ranked, i, dtype=torch.long))
    counts = [0] * len(scores)
    if not flat or n == 0:
        return counts
    values, groups = torch.cat(flat), torch.cat(owner)
    order = values.argsort(stable=True)[:n]
    for i, c in zip(*groups[order].unique(return_counts=True), strict=True):
        counts[int(i)] = int(c)
    return counts


def removable(scores: Sequence[Tensor | None]) -> int:
    """How many channels a global plan can remove at most (one stays per group)."""
    return sum(s.numel() - 1 for s in scores if s is not None)


def search_counts(
    model: nn.Module,
    groups: Sequence[Group],
    scores: Sequence[Tensor | None],
    allocation: str,
    compression: float,
) -> list[int]:
    """Channels to remove per group so that params / params_after is closest to ``compression``.

    Global: the number n of lowest-scored channels removed, found by bisection (the
    parameter count falls as n grows). Layer: the common fraction, by bisection.
    Raises ConfigError if even the largest removal stays below the target.
    """
    total = sum(p.numel() for p in model.parameters())
    scored = [s is not None for s in scores]

    def plan(x: float) -> list[int]:
        if allocation == "global":
            return global_counts(scores, int(x))
        return layer_counts(groups, scored, x)

    def ratio(x: float) -> float:
        return total / predict_params(model, removal(groups, plan(x)))

    hi = float(removable(scores)) if allocation == "global" else 1.0
    if ratio(hi) < compression:
        raise ConfigError(
            f"--compression {compression:g} is out of reach for channel pruning of this "
            f"model: removing all but one channel of every group gives {ratio(hi):.2f}"
        )
    lo = 0.0
    for _ in range(60):  # smallest x with ratio(x) >= compression
        if allocation == "global" and hi - lo <= 1:
            break
        mid = (lo + hi) / 2 if allocation == "layer" else float((int(lo) + int(hi)) // 2)
        if ratio(mid) >= compression:
            hi = mid
        else:
            lo = mid
    best = min((lo, hi), key=lambda x: abs(ratio(x) - compression))
    return plan(best)
