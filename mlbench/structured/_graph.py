"""Torch-Pruning's dependency graph over an mlbench model, with pruners for our own layers.

The CIFAR ResNets' option-A shortcut (``ZeroPadShortcut``) subsamples and zero-pads
channels. Traced as plain ops, Torch-Pruning would take the pad for an element-wise
op and couple 16 input channels to 32 output channels one to one, which is wrong.
Registered as a layer with its own pruner, its input channels join the group of the
stage before and its output channels the group of the stage after, and the pruner
keeps the channel map (which input lands in which output) exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from mlbench.models._cifar_resnet import ZeroPadShortcut


class ShortcutPruner(tp.pruner.BasePruningFunc):
    """Prunes the input or output channels of a ``ZeroPadShortcut``.

    In and out channels are independent (like a conv's): removing an output channel
    drops the input routed to it, removing an input channel leaves its output zero.
    """

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        gone = set(int(i) for i in idxs)
        kept = [o for o in range(layer.out_channels) if o not in gone]
        new_index = {old: new for new, old in enumerate(kept)}
        sources, placement = layer.channel_map()
        pairs = [(s, new_index[p]) for s, p in zip(sources, placement, strict=True)
                 if p in new_index]
        layer.sources, layer.placement = [s for s, _ in pairs], [p for _, p in pairs]
        layer.out_channels = len(kept)
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        gone = set(int(i) for i in idxs)
        kept = [c for c in range(layer.in_channels) if c not in gone]
        new_index = {old: new for new, old in enumerate(kept)}
        sources, placement = layer.channel_map()
        pairs = [(new_index[s], p) for s, p in zip(sources, placement, strict=True)
                 if s in new_index]
        layer.sources, layer.placement = [s for s, _ in pairs], [p for _, p in pairs]
        layer.in_channels = len(kept)
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.out_channels

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.in_channels


CUSTOM_PRUNERS: dict[type, tp.pruner.BasePruningFunc] = {ZeroPadShortcut: ShortcutPruner()}


def dependency_graph(model: nn.Module, input_shape: tuple[int, ...]) -> tp.DependencyGraph:
    """Trace ``model`` (eval mode, one zero sample) into Torch-Pruning's dependency graph."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(
                model,
                example_inputs=torch.zeros(1, *input_shape, device=device),
                customized_pruners=dict(CUSTOM_PRUNERS),
                verbose=False,
            )
    finally:
        model.train(was_training)
