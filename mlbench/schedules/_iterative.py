"""Iterative (Han et al.; Frankle et al.'s IMP): k rounds of prune, then fine-tune.

The kept fraction of the prunable weights falls geometrically, so every round removes
the same share of what is left, ending at exactly the run's target. What a round starts
from is ``--rewind`` (``mlbench/rewind.py``): ``finetune`` restarts the fine-tuning
schedule; ``dense_weights`` also resets the survivors to the final dense base weights;
``weights`` (Frankle et al. 2020) resets them to the base training's weights at
``--rewind-epoch`` and replays its schedule from there; ``lr`` (Renda et al. 2020) keeps
the weights and replays the base schedule. The epochs are split over the rounds.

Checkpoints are written between rounds (weights, masks, random streams, the curve so
far); an interrupted run resumes after the last round it finished.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from mlbench import checkpoint
from mlbench.checkpoint import Checkpointer
from mlbench.kinds import Pruned
from mlbench.masks import Masks, apply_masks
from mlbench.rewind import replay_recipe, replay_scheduler
from mlbench.schedules._contract import Schedule, Training, register_schedule
from mlbench.setup import generator


def round_epochs(total: int, rounds: int) -> list[int]:
    """``total`` epochs split over ``rounds`` rounds, the later rounds taking the remainder."""
    base, extra = divmod(total, rounds)
    return [base + (1 if r >= rounds - extra else 0) for r in range(rounds)]


def iterative_keeps(prunable: int, keep: int, rounds: int) -> list[int]:
    """Kept weights after each round: geometric from ``prunable`` down to exactly ``keep``."""
    density = keep / prunable
    out = [round(prunable * density ** ((r + 1) / rounds)) for r in range(rounds)]
    out[-1] = keep
    return [max(k, keep) for k in out]


def between_rounds(state: checkpoint.TrainState) -> str | None:
    """What a checkpoint lacks to resume a schedule between rounds (None: nothing)."""
    return None if "rounds" in state.meta else "written mid fine-tuning, not between rounds"


class Rounds:
    """Checkpoints of an iterative schedule, one after each round, through ``ck``.

    ``generator`` is the fine-tuning rounds' shared shuffling stream; ``history`` holds
    the per-epoch metrics so far (a resumed run's start with the interrupted run's).
    """

    def __init__(self, ck: Checkpointer | None, generator: torch.Generator) -> None:
        self.ck = ck
        self.generator = generator
        resume = ck.resume if ck is not None else None
        self.history: list[dict[str, float]] = list(resume.history) if resume else []

    def resume(self, model: nn.Module) -> tuple[int, Masks] | None:
        """Load the last finished round into ``model``: (rounds done, masks), or None."""
        if self.ck is None or self.ck.resume is None:
            return None
        return checkpoint.restore_round(self.ck.resume, model, self.generator)

    def epoch_done(self, metrics: dict[str, float]) -> None:
        """Record one fine-tuning epoch's metrics (in order, across rounds)."""
        self.history.append(dict(metrics))

    def round_done(self, rounds: int, epoch: int, model: nn.Module, masks: Masks) -> None:
        """Checkpoint after ``rounds`` rounds (``epoch`` epochs), unless switched off."""
        if self.ck is not None and self.ck.every_s >= 0:
            self.ck.write(checkpoint.capture_round(epoch, rounds, model, masks,
                                                   self.generator, self.history))


@register_schedule("iterative", rounds=True, rewinds=True)  # epochs split over the rounds
class Iterative(Schedule):
    """``prune_rounds`` rounds of prune + fine-tune, optionally rewinding the weights."""

    prunes_repeatedly = True

    def run(self, training: Training, pruned: Pruned) -> Pruned:
        setup, kind = training.setup, training.kind
        cfg, model = setup.cfg, setup.model
        model.load_state_dict(training.dense.state_dict())  # start again from the base
        # what --rewind weights / dense_weights reset the survivors to each round
        rewind_to = training.rewind_to or training.dense.state_dict()
        base_state = {k: v.clone() for k, v in rewind_to.items()}
        rounds = Rounds(training.checkpoints.open(model, holds=between_rounds),
                        generator(cfg.seed))
        done, masks = rounds.resume(model) or (0, None)
        prunable, keep = kind.budget(setup)
        count = cfg.prune.prune_rounds
        plan = zip(iterative_keeps(prunable, keep, count),
                   round_epochs(cfg.finetune.epochs, count), strict=True)
        start = 0
        for index, (kept, epochs) in enumerate(plan, start=1):
            if index > done:
                masks = kind.prune(setup, training.batches, keep=kept, previous=masks).masks
                if cfg.prune.rewind in ("weights", "dense_weights"):
                    model.load_state_dict(base_state)
                    apply_masks(model, masks)
                # weights / lr replay the base training's schedule from the rewind epoch
                recipe = replay_recipe(cfg, dataclasses.replace(cfg.finetune, epochs=epochs))
                training.fit(model, recipe, range(start + 1, start + epochs + 1), masks,
                             generator=rounds.generator,
                             after=lambda _epoch, metrics: rounds.epoch_done(metrics),
                             lr_schedule=replay_scheduler(cfg))
                rounds.round_done(index, start + epochs, model, masks)
            start += epochs
        assert masks is not None
        return Pruned(model, masks)
