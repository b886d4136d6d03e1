"""The schedule contract, over every registered schedule; and the keep sequences.

Each schedule runs for real (tiny synthetic data, the engine's fit) through
``recipe.finetune``: it ends at exactly the target, masks only shrink, it spends the
one-shot budget numbered as one run, pruned weights stay zero, and the same seed gives
the same masks.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlbench import catalog
from mlbench.config import RunConfig
from mlbench.errors import ConfigError
from mlbench.kinds import kind_of
from mlbench.recipe import finetune, prepare, run_name
from mlbench.report.frame import runs_frame
from mlbench.rewind import snapshot_epoch
from mlbench.schedules import (
    SCHEDULES,
    gradual_keeps,
    iterative_keeps,
    register_schedule,
    round_epochs,
    schedule_of,
)
from mlbench.sweep import Grid, runnable, sweep_hash
from tests.conftest import TINY

CFG = {**TINY, "epochs": 4, "prune_rounds": 3, "speed_repeats": 0}


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


def run(schedule: str, **extra: object):
    """One real fine-tuning along ``schedule``: masks seen after every epoch, epochs."""
    setup = prepare(RunConfig.from_flat({**CFG, "prune_schedule": schedule, **extra}))
    seen: list[dict[str, torch.Tensor]] = []
    epochs: list[int] = []

    def on_epoch(epoch: int, _metrics: dict[str, float]) -> None:
        epochs.append(epoch)
        seen.append({n: (p.detach() != 0).clone() for n, p in setup.prunable.items()})

    outcome = finetune(setup, on_epoch=on_epoch)
    return setup, outcome, seen, epochs


@pytest.mark.parametrize("schedule", SCHEDULES.names())
def test_every_schedule_keeps_the_contract(schedule):
    setup, outcome, seen, epochs = run(schedule)
    keep = kind_of(setup.cfg.prune.strategy).budget(setup)[1]
    masks = outcome.pruned.masks
    assert sum(int(m.sum()) for m in masks.values()) == keep  # exactly the target
    assert outcome.metrics["compression"] == pytest.approx(4.0, abs=0.01)
    assert epochs == [1, 2, 3, 4]  # the one-shot budget, numbered as one run
    for before, after in zip(seen, seen[1:], strict=False):
        for name in before:
            assert not (after[name] & ~before[name]).any()  # nothing pruned comes back
    for name, p in setup.prunable.items():
        assert (p[~masks[name].to(p.device)] == 0).all()
    again = run(schedule)[1].pruned.masks  # same seed, same masks
    assert all(torch.equal(masks[n], again[n]) for n in masks)


def test_weight_rewinding_changes_the_weights_and_not_the_target():
    lr = run("iterative")[1]
    weights = run("iterative", rewind="dense_weights")[1]
    assert weights.metrics["compression"] == lr.metrics["compression"]
    w1, w2 = lr.pruned.model.state_dict(), weights.pruned.model.state_dict()
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)


def test_gradual_pruning_starts_dense():
    _, _, seen, _ = run("gradual")
    assert all(bool(m.all()) for m in seen[0].values())  # epoch 1 at s_0 = 0 (Zhu & Gupta)


def test_one_shot_keeps_the_hash_it_had_and_other_schedules_change_it():
    one = RunConfig()
    assert "prune_schedule" not in one.run_key()
    it = RunConfig(prune=dataclasses.replace(one.prune, prune_schedule="iterative"))
    assert it.run_hash() != one.run_hash()
    assert it.flat()["prune_schedule"] == "iterative"


def test_a_kind_refuses_a_schedule_it_cannot_run_in_one_line_before_any_work():
    with pytest.raises(ConfigError, match="runs oneshot") as caught:
        prepare(RunConfig.from_flat({**CFG, "strategy": "global_l1_channel",
                                     "prune_schedule": "gradual"}))
    assert "\n" not in str(caught.value)


def test_the_sweep_grid_crosses_schedules_but_runs_channel_strategies_one_shot():
    grid = Grid(strategies=("global_weight", "global_l1_channel"), compressions=(2.0, 4.0),
                seeds=(0,), prune_schedules=("oneshot", "iterative"))
    cells = grid.cells(RunConfig(), runnable)
    pairs = [(c.prune.strategy, c.prune.prune_schedule) for c in cells]
    assert pairs.count(("global_weight", "iterative")) == 2
    assert ("global_l1_channel", "iterative") not in pairs and len(cells) == 6
    assert len({c.run_hash() for c in cells}) == 6
    one_shot = dataclasses.replace(grid, prune_schedules=("oneshot",))
    assert sweep_hash(RunConfig(), one_shot) != sweep_hash(RunConfig(), grid)


def _with(schedule: str, **prune: object) -> RunConfig:
    cfg = RunConfig()
    return dataclasses.replace(cfg, prune=dataclasses.replace(
        cfg.prune, prune_schedule=schedule, **prune))


@pytest.mark.parametrize("schedule", SCHEDULES.names())
def test_every_schedule_declares_its_traits_where_torch_free_code_reads_them(schedule):
    """What a schedule is (named in run names and labels; rounds of at least one epoch)
    lives on its registered object, declared once in its decorator, and the config and
    the report read the same from the source without importing torch."""
    obj = schedule_of(schedule)
    declared = catalog.schedule_traits()[schedule]
    assert declared == {trait: getattr(obj, trait) for trait in catalog.SCHEDULE_TRAITS}
    # run names and report labels follow the object, never the name
    mark = obj.mark
    assert mark == (schedule if obj.named else "") == catalog.schedule_mark(schedule)
    cfg = _with(schedule)
    assert run_name(cfg) == (f"global_weight-{mark}-c8-s0" if mark else "global_weight-c8-s0")
    run = {"run_id": "r", "run_name": run_name(cfg), "experiment": "e", "status": "FINISHED",
           "start_time": 0, "params": {k: str(v) for k, v in cfg.flat().items()},
           "metrics": {}, "tags": {}}
    label = runs_frame([run], [])["strategy"].iloc[0]
    assert label == (f"global_weight+{mark}" if mark else "global_weight")
    # --rewind weights at epoch k: the base keeps its snapshot only for a rewinding schedule
    rewound = _with(schedule, rewind="weights", rewind_epoch=1)
    assert ("base_rewind_epoch" in rewound.base_key()) == obj.rewinds
    assert (snapshot_epoch(rewound) == 1) == obj.rewinds
    # more rounds than epochs: refused by the config exactly where the schedule has rounds
    many = dataclasses.replace(_with(schedule, prune_rounds=3),
                               finetune=dataclasses.replace(cfg.finetune, epochs=2))
    if obj.rounds:
        with pytest.raises(ConfigError, match=f"--prune-rounds 3 is more than --epochs 2: "
                                              f"{schedule} pruning"):
            many.check()
    else:
        many.check()


def test_a_schedule_of_another_version_is_named_in_labels_and_traits_must_be_known():
    assert catalog.schedule_mark("cyclic") == "cyclic"  # a run read back from a store
    with pytest.raises(TypeError, match="unknown trait"):
        register_schedule("x", repeats=True)
