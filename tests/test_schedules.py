"""Iterative and gradual schedules: exact target, masks only shrink, epochs as one-shot."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlbench.config import FINETUNE_DEFAULTS, RunConfig
from mlbench.masks import keep_count, prunable_parameters
from mlbench.schedules import (
    Pruning,
    gradual,
    gradual_keeps,
    iterative,
    iterative_keeps,
    round_epochs,
)
from mlbench.strategies import STRATEGIES


def test_round_budgets_add_up_to_the_one_shot_epochs():
    assert round_epochs(5, 3) == [1, 2, 2]
    assert sum(round_epochs(7, 4)) == 7


def test_keep_sequences_fall_to_exactly_the_target():
    its = iterative_keeps(1000, 125, 3)
    assert its == [500, 250, 125]  # each round halves: 8x over three rounds
    grad = gradual_keeps(1000, 100, 4)
    assert grad[-1] == 100 and grad == sorted(grad, reverse=True)
    # Zhu & Gupta: s_t = s_f (1 - (1 - t/n)^3) from s_0 = 0 (issue 19): t = 0..4
    assert len(grad) == 5 and grad[0] == 1000
    assert grad[1] == 1000 - round(900 * (1 - 0.75**3))
    assert gradual_keeps(1000, 100, 0) == [100]  # no room for a ramp: prune at once


def run(schedule: str, lenet, rewind: str = "finetune"):
    prunable = prunable_parameters(lenet, "fc3")
    keep = keep_count(lenet, prunable, 6.0)
    base = {k: v.clone() for k, v in lenet.state_dict().items()}
    history: list[dict[str, torch.Tensor]] = []
    gen = torch.Generator().manual_seed(0)
    epochs: list[int] = []

    def fit_round(recipe, span, masks, after):  # "training": weights move, masks hold
        for epoch in span:
            epochs.append(epoch)
            with torch.no_grad():
                for name, p in prunable.items():
                    p.add_(torch.randn(p.shape, generator=gen) * 0.05)
                    p.mul_(masks[name].to(p.dtype))
            history.append({n: m.bool().clone() for n, m in masks.items()})
            after(epoch)

    pruning = Pruning(
        score=lambda: STRATEGIES.get("global_weight")(lenet, prunable, [], gen),
        allocation="global", prunable=sum(p.numel() for p in prunable.values()), keep=keep)
    finetune = dataclasses.replace(FINETUNE_DEFAULTS, epochs=5)
    if schedule == "iterative":
        masks = iterative(lenet, pruning, finetune, 3, rewind, fit_round, base)
    else:
        masks = gradual(lenet, pruning, finetune, 3, fit_round)
    return masks, history, keep, epochs, prunable


@pytest.mark.parametrize("schedule", ["iterative", "gradual"])
def test_schedules_reach_the_exact_target_and_masks_only_shrink(schedule, lenet):
    masks, history, keep, epochs, prunable = run(schedule, lenet)
    assert sum(int(m.sum()) for m in masks.values()) == keep
    assert epochs == [1, 2, 3, 4, 5]  # the one-shot budget, numbered as one run
    for before, after in zip(history, history[1:], strict=False):
        for name in before:
            assert not (after[name] & ~before[name]).any()  # nothing pruned comes back
    for name, p in prunable.items():
        assert (p[~masks[name]] == 0).all()


def test_gradual_pruning_starts_dense(lenet):
    _, history, *_ = run("gradual", lenet)
    assert all(bool(m.all()) for m in history[0].values())  # epoch 1 at s_0 = 0


def test_dense_weight_reset_restores_surviving_weights_to_the_base(lenet):
    base = {k: v.clone() for k, v in lenet.state_dict().items()}
    masks, *_ = run("iterative", lenet, rewind="dense_weights")
    # after the last rewind only one round of "training" moved the weights
    w = lenet.fc1.weight.detach()
    moved = (w - base["fc1.weight"])[masks["fc1.weight"]].abs().mean()
    assert 0 < moved < 0.1


def test_one_shot_keeps_the_hash_it_had_and_other_schedules_change_it():
    one = RunConfig()
    assert "prune_schedule" not in one.run_key()
    it = RunConfig(prune=dataclasses.replace(one.prune, prune_schedule="iterative"))
    assert it.run_hash() != one.run_hash()
    assert it.flat()["prune_schedule"] == "iterative"


def test_the_sweep_grid_crosses_schedules_but_runs_channel_strategies_one_shot():
    from mlbench.sweep import Grid, sweep_hash

    grid = Grid(strategies=("global_weight", "global_l1_channel"), compressions=(2.0, 4.0),
                seeds=(0,), prune_schedules=("oneshot", "iterative"))
    cells = grid.cells(RunConfig())
    pairs = [(c.prune.strategy, c.prune.prune_schedule) for c in cells]
    assert pairs.count(("global_weight", "iterative")) == 2
    assert ("global_l1_channel", "iterative") not in pairs and len(cells) == 6
    assert len({c.run_hash() for c in cells}) == 6
    one_shot = dataclasses.replace(grid, prune_schedules=("oneshot",))
    assert sweep_hash(RunConfig(), one_shot) != sweep_hash(RunConfig(), grid)
