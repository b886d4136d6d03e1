"""Pruning schedules: one-shot, iterative (k rounds, optional rewinding) and gradual.

Every schedule ends at exactly the run's target (the same kept-weight count as
one-shot) and, by default, spends the same total fine-tuning epochs as one-shot:

- ``oneshot``: prune once, fine-tune ``epochs``.
- ``iterative`` (Han et al.; Frankle et al.'s IMP): ``rounds`` rounds of prune then
  fine-tune; the kept fraction of the prunable weights falls geometrically, so every
  round removes the same share of what is left. What a round starts from is
  ``--rewind`` (``mlbench/rewind.py``: weight and learning-rate rewinding as published,
  and the restart of the fine-tuning schedule). The epochs are split over the rounds.
- ``gradual`` (Zhu & Gupta 2017): one fine-tuning run whose sparsity follows
  s_t = s_f (1 - (1 - t/n)^3), t = 0..n, set at the start of epochs 1..n+1: the ramp
  starts at s_0 = 0 (dense) as in the paper, and ends at the target.

Masks only shrink: a weight pruned in one step scores below every kept weight in the
next. Scores are recomputed from the current weights at every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mlbench.config import OptimConfig
from mlbench.masks import Masks, allocate, apply_masks

# (fine-tuning recipe of this round, global epoch numbers, masks,
#  called after each epoch with its global number) -> None
FitRound = Callable[[OptimConfig, range, Masks, Callable[[int], None]], None]


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


def gradual_keeps(prunable: int, keep: int, steps: int) -> list[int]:
    """Kept weights at t = 0..``steps``: Zhu & Gupta's cubic ramp from s_0 = 0 to ``keep``.

    ``steps`` 0 prunes to ``keep`` at once (a one-epoch run has no room for a ramp).
    """
    if steps == 0:
        return [keep]
    removed = prunable - keep
    return [prunable - round(removed * (1 - (1 - t / steps) ** 3)) for t in range(steps + 1)]


def shrink(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    """Scores with every already-pruned weight below all others, so masks only shrink."""
    if not masks:
        return dict(scores)
    out = {}
    for name, s in scores.items():
        s = s.float()
        out[name] = torch.where(masks[name].to(s.device), s, torch.full_like(s, -torch.inf))
    return out


@dataclass
class Pruning:
    """What a schedule needs to prune the model again."""

    score: Callable[[], dict[str, Tensor]]  # scores of the model as it is now
    allocation: str  # global or layer
    prunable: int  # prunable weights
    keep: int  # kept at the end


def _step(model: nn.Module, pruning: Pruning, masks: Masks | None, keep: int) -> Masks:
    new = allocate(shrink(pruning.score(), masks), keep, pruning.allocation)
    apply_masks(model, new)
    return new


def iterative(
    model: nn.Module, pruning: Pruning, finetune: OptimConfig, rounds: int, rewind: str,
    fit_round: FitRound, base_state: Mapping[str, Tensor], *,
    resumed: tuple[int, Masks] | None = None,
    after_round: Callable[[int, int, Masks], None] = lambda rounds, epoch, masks: None,
) -> Masks:
    """Prune and fine-tune in ``rounds`` rounds; return the final masks.

    ``resumed`` (rounds done, their masks; the model holds their weights) skips those
    rounds; ``after_round(rounds done, epochs done, masks)`` hears the end of each round.
    """
    done, masks = resumed if resumed is not None else (0, None)
    start = 0
    keeps = iterative_keeps(pruning.prunable, pruning.keep, rounds)
    plan = zip(keeps, round_epochs(finetune.epochs, rounds), strict=True)
    for index, (keep, epochs) in enumerate(plan, start=1):
        if index > done:
            masks = _step(model, pruning, masks, keep)
            if rewind in ("weights", "dense_weights"):  # issue 19: base_state is the
                model.load_state_dict(base_state)  # rewind point's or the dense base's
                apply_masks(model, masks)
            recipe = dataclasses.replace(finetune, epochs=epochs)
            fit_round(recipe, range(start + 1, start + epochs + 1), masks, lambda _e: None)
            after_round(index, start + epochs, masks)
        start += epochs
    assert masks is not None
    return masks


def gradual(
    model: nn.Module, pruning: Pruning, finetune: OptimConfig, steps: int, fit_round: FitRound,
) -> Masks:
    """Fine-tune once while the sparsity rises at the start of the first ``steps`` epochs.

    The mask tensors are updated in place, so the training loop's mask hold (which
    keeps them by reference: float masks of the parameter's dtype and device) follows.
    """
    # issue 19: n + 1 settings (s_0 = 0 first), the last at least one epoch before the end
    steps = min(steps, finetune.epochs - 1) if finetune.epochs > 1 else 0
    keeps = gradual_keeps(pruning.prunable, pruning.keep, steps)
    first = _step(model, pruning, None, keeps[0])
    params = dict(model.named_parameters())
    held = {n: m.to(dtype=params[n].dtype, device=params[n].device) for n, m in first.items()}

    def after_epoch(epoch: int) -> None:  # the start of epoch + 1
        if epoch < len(keeps):
            new = _step(model, pruning, {n: m.bool() for n, m in held.items()}, keeps[epoch])
            for name, mask in new.items():
                held[name].copy_(mask)

    fit_round(finetune, range(1, finetune.epochs + 1), held, after_epoch)
    return {n: m.bool().cpu() for n, m in held.items()}


__all__ = [
    "Pruning",
    "gradual",
    "gradual_keeps",
    "iterative",
    "iterative_keeps",
    "round_epochs",
    "shrink",
]
