"""Pruning at initialization as published, and Frankle et al. 2021's sanity checks (issue 19).

``--prune-at init`` scores the base model's *initial* weights (the seeded
initialization base training starts from, rebuilt bit for bit), prunes them, and trains
the masked network from scratch with the base model's training recipe and budget
(``--base-*``), as SNIP (Lee et al. 2019), GraSP (Wang et al. 2020) and SynFlow
(Tanaka et al. 2020) do. SynFlow runs as published: ``--synflow-rounds`` (100) data-free
rounds, the kept fraction falling exponentially (density^(r/R) after round r), scores
recomputed on the masked network each round. ``--prune-at trained`` (the default) is the
paper's protocol: score the trained base, prune, fine-tune.

The sanity checks of Frankle et al. 2021 ("Pruning Neural Networks at Initialization:
Why Are We Missing the Mark?"), ``--init-check``: ``layer_shuffle`` keeps each layer's
sparsity but shuffles which of its weights are kept (seeded); ``reinit`` keeps the masks
but trains freshly drawn initial weights (another seed) instead of the scored ones.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from mlbench.config import RunConfig
from mlbench.device import place_model
from mlbench.errors import ConfigError
from mlbench.masks import Masks, allocate, apply_masks, keep_count, shrink
from mlbench.models import create_model
from mlbench.strategies import STRATEGIES, strategy_allocation

if TYPE_CHECKING:
    from mlbench.setup import Setup

Batch = tuple[Tensor, Tensor]
REINIT_SEED_OFFSET = 1_000_003  # --init-check reinit draws its weights from seed + this


def check(cfg: RunConfig, supported: bool, prunes_repeatedly: bool) -> None:
    """ConfigError (before any work) for at-init settings that cannot run as asked.

    ``supported``: the strategy's kind prunes at initialization (``Kind.prunes_at_init``);
    ``prunes_repeatedly``: the run's schedule does (``Schedule.prunes_repeatedly``), which
    pruning once, before training, cannot follow.
    """
    p = cfg.prune
    if p.prune_at == "trained":
        if p.init_check != "none":
            raise ConfigError(f"--init-check {p.init_check} is a check of pruning at "
                              "initialization; it needs --prune-at init")
        return
    if not supported:
        raise ConfigError(f"--prune-at init applies to unstructured strategies, not "
                          f"{p.strategy!r}")
    if prunes_repeatedly:
        raise ConfigError(f"--prune-at init prunes once, before training; --prune-schedule "
                          f"{p.prune_schedule} is for pruning after training")


def initial_model(setup: Setup, seed: int | None = None) -> nn.Module:
    """A fresh model with the seeded initialization ``prepare`` builds (``seed``: another)."""
    cfg, info = setup.cfg, setup.splits.info
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed if seed is None else seed)
        model = create_model(cfg.model, info.input_shape, info.num_classes)
    place_model(model, setup.device, cfg.memory_format)
    return model


def reset_to_init(setup: Setup) -> None:
    """Load the seeded initialization into ``setup.model`` (every rank)."""
    setup.model.load_state_dict(initial_model(setup).state_dict())


def init_masks(setup: Setup, batches: Sequence[Batch]) -> Masks:
    """Score ``setup.model`` (holding the initial weights) and keep the target's count.

    SynFlow runs ``--synflow-rounds`` rounds; every other strategy scores once.
    """
    cfg = setup.cfg
    gen = torch.Generator().manual_seed(cfg.seed)
    keep = keep_count(setup.model, setup.prunable, cfg.prune.compression)
    if cfg.prune.strategy == "synflow":
        return synflow_rounds(setup.model, list(setup.prunable), keep,
                              cfg.prune.synflow_rounds, batches)
    scores = STRATEGIES.get(cfg.prune.strategy)(setup.model, setup.prunable, batches, gen)
    return allocate(scores, keep, strategy_allocation(cfg.prune.strategy))


def synflow_rounds(model: nn.Module, names: list[str], keep: int, rounds: int,
                   batches: Sequence[Batch]) -> Masks:
    """SynFlow as published: ``rounds`` data-free rounds on a masked copy of ``model``.

    After round r the kept fraction is density^(r / rounds) (Tanaka et al.'s exponential
    schedule), ending at exactly ``keep``; pruned weights never come back. ``model`` is
    not changed.
    """
    work = copy.deepcopy(model)
    params = dict(work.named_parameters())
    prunable = {n: params[n] for n in names}
    total = sum(p.numel() for p in prunable.values())
    scorer = STRATEGIES.get("synflow")
    masks: Masks | None = None
    for r in range(1, rounds + 1):
        kept = keep if r == rounds else max(keep, round(total * (keep / total) ** (r / rounds)))
        scores = scorer(work, prunable, batches, torch.Generator())
        masks = allocate(shrink(scores, masks), kept, "global")
        apply_masks(work, masks)
    assert masks is not None
    return masks


def sanity_check(setup: Setup, masks: Masks) -> Masks:
    """Apply ``--init-check``: shuffle masks within layers, or reinitialize the weights."""
    cfg = setup.cfg
    check_name = cfg.prune.init_check
    if check_name == "layer_shuffle":
        gen = torch.Generator().manual_seed(cfg.seed)
        masks = {n: shuffled(m, gen) for n, m in masks.items()}
    elif check_name == "reinit":
        fresh = initial_model(setup, seed=cfg.seed + REINIT_SEED_OFFSET)
        setup.model.load_state_dict(fresh.state_dict())
    return masks


def shuffled(mask: Tensor, generator: torch.Generator) -> Tensor:
    """The same number of kept weights, at seeded random places of the same tensor."""
    flat = mask.flatten()
    perm = torch.randperm(flat.numel(), generator=generator).to(flat.device)
    return flat[perm].view_as(mask)


def prune_at_init(setup: Setup, batches: Sequence[Batch]) -> Masks:
    """Reset to the seeded init, score it, prune, apply the sanity check; masks applied.

    Under torchrun rank 0 scores and the masks are broadcast; every rank loads the same
    initial (or reinitialized) weights.
    """
    reset_to_init(setup)
    dist = setup.dist
    masks = dist.broadcast_masks(init_masks(setup, batches) if dist.is_main else None,
                                 setup.prunable)
    masks = sanity_check(setup, masks)
    apply_masks(setup.model, masks)
    return masks


__all__ = [
    "REINIT_SEED_OFFSET",
    "check",
    "init_masks",
    "initial_model",
    "prune_at_init",
    "reset_to_init",
    "sanity_check",
    "shuffled",
    "synflow_rounds",
]
