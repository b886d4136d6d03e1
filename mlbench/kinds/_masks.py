"""Unstructured masks: single weights zeroed by a score, allocated globally or per layer.

DESIGN.md's paper protocol: a strategy (``mlbench.strategies``) scores every prunable
weight, the allocation keeps exactly the target's count (one global threshold, or the
same fraction of every tensor), and fine-tuning holds the masks. The kind prunes again
with fewer weights on request, masks only shrinking, which is what iterative and
gradual schedules do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from mlbench.config import RunConfig
from mlbench.errors import ConfigError
from mlbench.kinds._contract import (
    Kind,
    Metrics,
    Pruned,
    Rows,
    ScheduleTraits,
    register_kind,
)
from mlbench.masks import Masks, allocate, apply_masks, keep_count, load_masks, save_masks
from mlbench.metrics import size_and_ops
from mlbench.models import create_model
from mlbench.setup import Batch, Setup, generator
from mlbench.strategies import STRATEGIES, strategy_allocation, strategy_kind

MASKS_FILE = "masks.safetensors"
WEIGHTS_FILE = "weights.safetensors"


def shrink(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    """Scores with every already-pruned weight below all others, so masks only shrink."""
    if not masks:
        return dict(scores)
    out = {}
    for name, s in scores.items():
        s = s.float()
        out[name] = torch.where(masks[name].to(s.device), s, torch.full_like(s, -torch.inf))
    return out


@register_kind("masks")
class MaskKind(Kind):
    """Unstructured masks: every strategy of ``mlbench.strategies`` registered as ``masks``."""

    files = (MASKS_FILE,)
    repeatable = True

    def strategies(self) -> list[str]:
        return [n for n in STRATEGIES.names() if strategy_kind(n) == self.name]

    def check(self, setup: Setup, schedule: ScheduleTraits) -> None:
        """The target must be reachable by pruning only the prunable set."""
        super().check(setup, schedule)
        self.budget(setup)

    def budget(self, setup: Setup) -> tuple[int, int]:
        keep = keep_count(setup.model, setup.prunable, setup.cfg.prune.compression)
        return sum(p.numel() for p in setup.prunable.values()), keep

    def prune(self, setup: Setup, batches: Sequence[Batch], *, keep: int | None = None,
              previous: Masks | None = None) -> Pruned:
        """Score, allocate ``keep`` weights (already-pruned ones last), apply the masks.

        Under torchrun rank 0 scores and broadcasts the masks.
        """
        cfg, dist = setup.cfg, setup.dist
        keep = self.budget(setup)[1] if keep is None else keep
        masks = None
        if dist.is_main:
            scorer = STRATEGIES.get(cfg.prune.strategy)
            scores = scorer(setup.model, setup.prunable, batches, generator(cfg.seed))
            masks = allocate(shrink(scores, previous), keep,
                             strategy_allocation(cfg.prune.strategy))
        masks = dist.broadcast_masks(masks, setup.prunable)
        apply_masks(setup.model, masks)
        return Pruned(setup.model, masks)

    def sizes(self, setup: Setup, dense: nn.Module, pruned: Pruned) -> tuple[Metrics, Rows]:
        return size_and_ops(pruned.model, pruned.masks, setup.splits.info.input_shape)

    def save(self, pruned: Pruned, setup: Setup, folder: Path, meta: Mapping[str, str]
             ) -> list[Path]:
        path = folder / MASKS_FILE
        save_masks(pruned.masks, path, dict(meta))
        return [path]

    def load(self, folder: Path, config: Mapping[str, Any]) -> nn.Module:
        """The model rebuilt by name from the registry, its weights, the masks applied."""
        if "input_shape" not in config:
            raise ConfigError(f"{folder / 'config.json'} has no input_shape: the run predates "
                              "load_pruned; rerun it with this version of mlbench")
        keys = set(RunConfig().flat())
        cfg = RunConfig.from_flat({k: v for k, v in config.items() if k in keys})
        model = create_model(cfg.model, tuple(config["input_shape"]),
                             int(config["num_classes"]))
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        apply_masks(model, load_masks(folder / MASKS_FILE))  # zero already; exact
        return model
