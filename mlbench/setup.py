"""What a run prunes: its checked config, device, data and freshly seeded model.

``recipe.prepare`` builds a ``Setup`` after every check; kinds and schedules read it
(the model in it is the one they prune). It lives below both so that neither imports
the recipe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mlbench.config import RunConfig
from mlbench.data import Splits
from mlbench.distributed import Dist

Batch = tuple[Tensor, Tensor]


@dataclass
class Setup:
    """What ``prepare`` checked and built: device, data, a freshly seeded model.

    ``prunable`` are the weights a mask may zero (DESIGN.md's prunable set: every Conv*d
    and Linear weight but the classifier's unless asked for).
    """

    cfg: RunConfig
    device: torch.device
    splits: Splits
    model: nn.Module
    prunable: dict[str, nn.Parameter]
    dist: Dist = Dist()


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with the global torch RNG seeded, restoring the caller's RNG after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def generator(seed: int) -> torch.Generator:
    """A CPU generator for shuffling, augmentation and random scores."""
    return torch.Generator().manual_seed(seed)


def score_batches(setup: Setup) -> list[Batch]:
    """The first ``score_batches`` training batches of a seeded shuffle, not augmented.

    Gradient scores, channel criteria and calibration all see these same batches.
    """
    cfg = setup.cfg
    gen = generator(cfg.seed)
    batches = []
    for x, y in setup.splits.train.batches(cfg.finetune.batch_size, shuffle=True, generator=gen):
        if len(batches) == cfg.prune.score_batches:
            break
        batches.append((x, y))
    return batches


__all__ = ["Batch", "Setup", "generator", "score_batches", "seeded"]
