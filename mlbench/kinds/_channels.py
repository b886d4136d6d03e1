"""Channel removal: whole channels cut with Torch-Pruning, leaving a smaller dense network.

The criteria are ``mlbench.structured``'s registered channel strategies; the plan, the
surgery and the rebuild from a JSON description live there too. Counts are taken on the
smaller network itself (DESIGN.md: compression and speedup mean what they mean for
masks). Channel removal runs one-shot: it cannot prune again with masks only shrinking.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlbench.errors import ConfigError
from mlbench.kinds._contract import (
    Kind,
    Metrics,
    Pruned,
    Rows,
    ScheduleTraits,
    register_kind,
)
from mlbench.masks import Masks
from mlbench.metrics import conv_linear_ops, layer_table
from mlbench.models import classifier_name
from mlbench.models._transformer import Attention
from mlbench.setup import Batch, Setup
from mlbench.structured import (
    CHANNEL_STRATEGIES,
    DESCRIPTION,
    channel_sizes,
    describe,
    load_channel_pruned,
    max_channel_compression,
    prune_channels,
    scorable_channels,
)

WEIGHTS_FILE = "weights.safetensors"


def _classifier(setup: Setup) -> str | None:
    return None if setup.cfg.prune.prune_classifier else classifier_name(setup.model)


@register_kind("channels")
class ChannelKind(Kind):
    """Channel removal: every registered channel strategy."""

    files = (DESCRIPTION,)
    repeatable = False

    def strategies(self) -> list[str]:
        return CHANNEL_STRATEGIES.names()

    def check(self, setup: Setup, schedule: ScheduleTraits) -> None:
        """One-shot only; the criterion must score some channel of this model (network
        slimming needs BatchNorm); the target must be reachable keeping one channel per
        group. Scored on a copy of the untrained model with one batch of zeros."""
        super().check(setup, schedule)
        cfg, shape = setup.cfg, setup.splits.info.input_shape
        if any(isinstance(m, (Attention, nn.MultiheadAttention)) for m in setup.model.modules()):
            raise ConfigError(  # channel surgery would cut attention heads' widths apart
                f"--strategy {cfg.prune.strategy} removes conv channels; model {cfg.model!r} "
                "is a transformer: remove its heads or MLP neurons with remove_heads or "
                "remove_neurons")
        classifier = _classifier(setup)
        probe = [(torch.zeros(2, *shape, device=setup.device),
                  torch.zeros(2, dtype=torch.long, device=setup.device))]
        if not scorable_channels(setup.model, cfg.prune.strategy, shape, classifier, probe):
            raise ConfigError(
                f"--strategy {cfg.prune.strategy} finds no channel it can score in model "
                f"{cfg.model!r} (network slimming needs BatchNorm layers); choose an l1 or "
                "taylor channel strategy for it")
        limit = max_channel_compression(setup.model, shape, classifier)
        if limit < cfg.prune.compression:
            raise ConfigError(
                f"--compression {cfg.prune.compression:g} is out of reach for channel "
                f"pruning of this model: removing all but one channel of every group allows "
                f"1 to {limit:.1f}")

    def prune(self, setup: Setup, batches: Sequence[Batch], *, keep: int | None = None,
              previous: Masks | None = None) -> Pruned:
        """A smaller copy of ``setup.model`` (left untouched) and its description."""
        cfg, info = setup.cfg, setup.splits.info
        cut = prune_channels(setup.model, cfg.prune.strategy, cfg.prune.compression,
                             info.input_shape, _classifier(setup), batches)
        description = describe(cut, cfg.model, info.input_shape, info.num_classes,
                               cfg.prune.strategy)
        return Pruned(cut.model, {}, description)

    def sizes(self, setup: Setup, dense: nn.Module, pruned: Pruned) -> tuple[Metrics, Rows]:
        """Counts of the smaller network against the base's, both speedup conventions."""
        shape = setup.splits.info.input_shape
        rows = layer_table(pruned.model, {}, shape)
        metrics = channel_sizes(dense, pruned.model, shape)
        base = conv_linear_ops(layer_table(dense, {}, shape))
        mine = conv_linear_ops(rows)
        macs, macs_nz = base["macs_conv_linear"], mine["macs_conv_linear"]
        metrics.update(macs_conv_linear=macs, macs_conv_linear_nz=macs_nz,
                       speedup_conv_linear=macs / macs_nz if macs_nz else float("inf"))
        return metrics, rows

    def save(self, pruned: Pruned, setup: Setup, folder: Path, meta: Mapping[str, str]
             ) -> list[Path]:
        path = folder / DESCRIPTION
        path.write_text(json.dumps(pruned.description, indent=2))
        return [path]

    def load(self, folder: Path, config: Mapping[str, Any]) -> nn.Module:
        return load_channel_pruned(folder / DESCRIPTION, folder / WEIGHTS_FILE)
