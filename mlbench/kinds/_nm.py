"""N:M semi-structured masks (today 2:4): masks whose pattern sparse tensor cores run.

The scores come from ``mlbench.strategies`` (registered with ``kind="nm"``); allocation,
masks and sizes are the unstructured kind's. What differs: the target must leave room
for the pattern (checked before any work), and the measured speed uses 2:4 sparse
kernels where the device has them (fp16 copies of both networks), dense ones otherwise.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mlbench import speed
from mlbench.errors import ConfigError
from mlbench.kinds._contract import Metrics, Pruned, ScheduleTraits, register_kind
from mlbench.kinds._masks import MaskKind
from mlbench.setup import Setup
from mlbench.strategies import pattern_floor

SPARSE = "2:4 semi-structured (fp16) against dense fp16"


@register_kind("nm")
class NMKind(MaskKind):
    """N:M semi-structured masks: every strategy registered as ``nm``."""

    def check(self, setup: Setup, schedule: ScheduleTraits) -> None:
        """The unstructured checks, and a target at or above the pattern's own compression."""
        super().check(setup, schedule)
        cfg = setup.cfg
        floor = pattern_floor(setup.model, setup.prunable)
        if cfg.prune.compression < floor - 1e-9:
            raise ConfigError(
                f"--compression {cfg.prune.compression:g} is below what "
                f"{cfg.prune.strategy} needs for this model: keeping 2 of every 4 weights "
                f"of its eligible layers gives {floor:.3f}, so the target must be at least "
                "that")

    def kernels(self, setup: Setup) -> str:
        if speed.semi_structured_supported(setup.device):
            return SPARSE
        return f"dense: {speed.SEMI_STRUCTURED_REASON}"

    def timed(self, setup: Setup, dense: nn.Module, pruned: Pruned
              ) -> tuple[nn.Module, nn.Module, Metrics]:
        """fp16 copies: the base dense, the pruned one with its 2:4 Linear weights as
        semi-structured sparse tensors (when the device has the kernels)."""
        if self.kernels(setup) != SPARSE:
            return dense, pruned.model, {}
        with torch.no_grad():
            base = copy.deepcopy(dense).half()
            model, converted = speed.to_semi_structured(copy.deepcopy(pruned.model).half(),
                                                        setup.device)
        return base, model, {"semi_structured_layers": float(converted)}
