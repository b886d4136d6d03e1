"""Structured (channel) pruning: whole channels removed with Torch-Pruning's dependency graph.

A channel strategy scores the channels of every group of coupled layers, a plan
chooses how many each group loses so the whole model reaches the target
compression, and the surgery leaves a smaller dense network. Its description (JSON)
and weights (safetensors) rebuild it without pickle.

    >>> pruned = prune_channels(model, "global_l1_channel", 4.0, (3, 32, 32), "fc")
"""

from mlbench.structured._criteria import (
    CHANNEL_STRATEGIES,
    channel_strategy_names,
    register_channel_strategy,
)
from mlbench.structured._surgery import (
    DESCRIPTION,
    ChannelPruned,
    channel_sizes,
    describe,
    load_channel_pruned,
    max_channel_compression,
    prune_channels,
    rebuild,
    scorable_channels,
)

__all__ = [
    "CHANNEL_STRATEGIES",
    "DESCRIPTION",
    "ChannelPruned",
    "channel_sizes",
    "channel_strategy_names",
    "describe",
    "load_channel_pruned",
    "max_channel_compression",
    "prune_channels",
    "rebuild",
    "scorable_channels",
    "register_channel_strategy",
]
