"""Channel pruning end to end: score, plan, remove, describe, and rebuild from the description.

The description of a pruned network is Torch-Pruning's pruning history (for each
removal: the root layer, out or in channels, the channel indices), plus the model
name and input shape it applies to. Replaying it on a freshly built model of the
same architecture gives the same layers; its weights come from a safetensors file.
Nothing is pickled.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from torch import Tensor, nn

from mlbench.errors import ConfigError
from mlbench.metrics import _module_macs
from mlbench.models import create_model
from mlbench.structured._criteria import CHANNEL_STRATEGIES, Batch
from mlbench.structured._graph import dependency_graph
from mlbench.structured._plan import (
    Group,
    channel_groups,
    predict_macs,
    predict_params,
    removable,
    removal,
    search_counts,
)

DESCRIPTION = "structure.json"


@dataclass
class ChannelPruned:
    """A channel-pruned model and what was predicted and done to it."""

    model: nn.Module
    history: list[list[Any]]  # Torch-Pruning's pruning history, JSON-ready
    predicted_params: int
    predicted_macs: dict[str, float]  # per conv / linear / norm layer
    kept: dict[str, int]  # channels kept per group, by root layer


def prune_channels(
    model: nn.Module,
    strategy: str,
    compression: float,
    input_shape: tuple[int, ...],
    classifier: str | None,
    batches: Sequence[Batch] = (),
) -> ChannelPruned:
    """A smaller dense copy of ``model`` with whole channels removed by ``strategy``.

    The number of channels is chosen so that params(model) / params(copy) is as close
    to ``compression`` as whole channels allow. ``model`` itself is left untouched.

    Example:
        >>> pruned = prune_channels(net, "global_l1_channel", 4.0, (3, 32, 32), "fc")
        >>> pruned.model(torch.zeros(1, 3, 32, 32)).shape
    """
    criterion = CHANNEL_STRATEGIES.get(strategy)
    allocation = CHANNEL_STRATEGIES.meta(strategy)["allocation"]
    work = copy.deepcopy(model)
    graph = dependency_graph(work, input_shape)
    groups = channel_groups(graph, work, classifier)
    modules = dict(work.named_modules())
    scores = criterion(work, [g.full for g in groups], list(batches))
    if removable(scores) == 0:
        raise ConfigError(
            f"strategy {strategy!r} finds no channel it can score in this model "
            "(e.g. network slimming needs BatchNorm layers)"
        )
    counts = search_counts(work, groups, scores, allocation, compression)
    macs = _module_macs(work, input_shape)
    gone = removal(groups, counts)
    predicted = ChannelPruned(
        model=work,
        history=[],
        predicted_params=predict_params(work, gone),
        predicted_macs=predict_macs(work, macs, gone),
        kept={g.root: g.channels - k for g, k in zip(groups, counts, strict=True)},
    )
    _remove(graph, modules, groups, scores, counts)
    predicted.history = _jsonable(graph.pruning_history())
    return predicted


def _remove(
    graph: Any,
    modules: dict[str, nn.Module],
    groups: Sequence[Group],
    scores: Sequence[Tensor | None],
    counts: Sequence[int],
) -> None:
    for group, score, k in zip(groups, scores, counts, strict=True):
        if k == 0 or score is None:
            continue
        idxs = sorted(score.argsort(stable=True)[:k].tolist())
        root = modules[group.root]
        handler = graph.get_pruner_of_module(root).prune_out_channels
        graph.get_pruning_group(root, handler, idxs).prune()


def _jsonable(history: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[name, bool(out), [int(i) for i in idxs]] for name, out, idxs in history]


def describe(
    pruned: ChannelPruned, model: str, input_shape: tuple[int, ...], num_classes: int,
    strategy: str,
) -> dict[str, Any]:
    """The JSON description that ``rebuild`` turns back into the pruned architecture."""
    return {
        "format": "mlbench.structured/1",
        "model": model,
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "strategy": strategy,
        "kept_channels": pruned.kept,
        "pruning_history": pruned.history,
    }


def rebuild(description: dict[str, Any]) -> nn.Module:
    """The pruned architecture of a description (random weights: load them next)."""
    try:
        shape = tuple(int(s) for s in description["input_shape"])
        model = create_model(description["model"], shape, int(description["num_classes"]))
        history = [(n, bool(o), list(map(int, i))) for n, o, i in description["pruning_history"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"not a structured-pruning description: {exc}") from None
    graph = dependency_graph(model, shape)
    graph.load_pruning_history(history)
    return model


def load_channel_pruned(description: str | Path, weights: str | Path) -> nn.Module:
    """Rebuild a channel-pruned model from its JSON description and safetensors weights."""
    try:
        spec = json.loads(Path(description).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{description} is not a readable description: {exc}") from None
    model = rebuild(spec)
    state = load_file(str(weights))
    model.load_state_dict(state, strict=True)
    return model


def scorable_channels(
    model: nn.Module, strategy: str, input_shape: tuple[int, ...], classifier: str | None,
    batches: Sequence[Batch],
) -> int:
    """How many channels ``strategy`` can score (and so remove) in a copy of ``model``:
    0 when it has nothing to say about any group (no BatchNorm for network slimming)."""
    work = copy.deepcopy(model)
    groups = channel_groups(dependency_graph(work, input_shape), work, classifier)
    return removable(CHANNEL_STRATEGIES.get(strategy)(work, [g.full for g in groups],
                                                      list(batches)))


def max_channel_compression(
    model: nn.Module, input_shape: tuple[int, ...], classifier: str | None
) -> float:
    """The compression left when every group keeps one channel (any criterion's limit)."""
    graph = dependency_graph(model, input_shape)
    groups = channel_groups(graph, model, classifier)
    total = sum(p.numel() for p in model.parameters())
    return total / predict_params(model, removal(groups, [g.channels - 1 for g in groups]))


def channel_sizes(base: nn.Module, pruned: nn.Module, input_shape: tuple[int, ...]
                  ) -> dict[str, float]:
    """DESIGN.md's size metrics for a structured run, counted on the smaller model itself.

    ``params``/``macs`` are the dense base model's, ``params_nz``/``macs_nz`` the pruned
    network's own (every one of its weights is kept), so ``compression`` and ``speedup``
    mean what they mean for unstructured runs.
    """
    params = sum(p.numel() for p in base.parameters())
    params_nz = sum(p.numel() for p in pruned.parameters())
    macs = sum(_module_macs(base, input_shape).values())
    macs_nz = sum(_module_macs(pruned, input_shape).values())
    return {
        "params": params,
        "params_nz": params_nz,
        "compression": params / params_nz,
        "macs": macs,
        "macs_nz": macs_nz,
        "flops": 2 * macs,
        "flops_nz": 2 * macs_nz,
        "speedup": macs / macs_nz,
    }


