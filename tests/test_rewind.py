"""Issue 19, point 1: rewinding as published (Frankle et al. 2020, Renda et al. 2020)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlbench.config import RunConfig, TrackingConfig
from mlbench.device import Precision
from mlbench.engine import fit
from mlbench.errors import ConfigError
from mlbench.optim import build_optimizer, lr_factor
from mlbench.recipe import prepare, train_base
from mlbench.rewind import (
    initial_state,
    replay_recipe,
    replay_scheduler,
    rewind_state,
    snapshot_epoch,
)
from mlbench.setup import generator, seeded
from tests.conftest import TINY


def tiny(**over: object) -> RunConfig:
    values = {**TINY, "base_epochs": 3, "prune_schedule": "iterative", "prune_rounds": 1,
              "rewind": "weights",
              "rewind_epoch": 1, **over}
    return RunConfig.from_flat(values)


def test_the_rewind_point_is_the_base_trainings_weights_at_that_epoch(tmp_path):
    from mlbench.tracking import Tracker

    cfg = tiny()
    assert snapshot_epoch(cfg) == 1
    tracker = Tracker(TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
                                     checkpoint_every=-1))
    setup = prepare(cfg)
    base = train_base(setup, tracker)
    rewound = rewind_state(prepare(cfg), tracker, base)
    assert rewound is not None

    # an independent run of the same base recipe, stopped after epoch 1
    alone = prepare(cfg)
    with seeded(cfg.seed):
        fit(alone.model, alone.splits.train, alone.splits.val, cfg.base,
            generator=generator(cfg.seed), precision=Precision(alone.device, cfg.amp),
            augment=cfg.data.augment, epochs=range(1, 2))
    expected = alone.model.state_dict()
    assert set(rewound) == set(expected)
    for name, value in expected.items():
        assert torch.equal(rewound[name], value.cpu()), name  # bit for bit
    trained = setup.model.state_dict()  # the base after all 3 epochs: not the rewind point
    assert not torch.equal(trained["conv1.weight"].cpu(), rewound["conv1.weight"])


def test_rewinding_to_epoch_zero_is_the_seeded_initialization():
    cfg = tiny(rewind_epoch=0)
    assert snapshot_epoch(cfg) is None  # nothing to save: the init is rebuilt exactly
    setup = prepare(cfg)
    fresh = prepare(cfg).model.state_dict()  # what base training starts from
    state = initial_state(setup)
    assert all(torch.equal(state[k], v) for k, v in fresh.items())


def test_learning_rate_rewinding_replays_the_base_schedule_from_epoch_k():
    cfg = tiny(rewind="lr", rewind_epoch=2, base_epochs=5, lr=0.001, base_lr=0.1)
    recipe = replay_recipe(cfg, dataclasses.replace(cfg.finetune, epochs=2))
    assert recipe.lr == 0.1 and recipe.epochs == 2 and recipe.schedule == cfg.base.schedule
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, recipe)
    steps = 4
    sched = replay_scheduler(cfg)(opt, steps)
    for step in range(2 * steps):
        want = 0.1 * lr_factor(cfg.base, step + 2 * steps, steps)
        assert opt.param_groups[0]["lr"] == pytest.approx(want)
        opt.step()
        sched.step()
    old = tiny(rewind="finetune")  # the restart of the fine-tuning schedule, by name
    assert replay_scheduler(old) is None and replay_recipe(old, old.finetune) == old.finetune


def test_the_rewind_epoch_is_bounded_logged_and_hashed():
    with pytest.raises(ConfigError, match="--rewind-epoch must be <= --base-epochs"):
        tiny(rewind_epoch=4)
    one, two = tiny(rewind_epoch=1), tiny(rewind_epoch=2)
    assert one.run_hash() != two.run_hash()
    assert one.base_key()["base_rewind_epoch"] == 1  # a base with its snapshot is distinct
    assert one.base_hash() != two.base_hash()
    assert "base_rewind_epoch" not in tiny(rewind="lr").base_key()  # lr needs no snapshot
    assert one.flat()["rewind_epoch"] == 1
    plain = RunConfig()
    assert "rewind_epoch" not in plain.run_key() and "prune_at" not in plain.run_key()


@pytest.mark.slow
def test_prune_runs_rewind_through_the_recipe(tmp_path, monkeypatch):
    """--rewind weights loads the base run's snapshot; --rewind lr replays its schedule."""
    from mlflow import MlflowClient

    from mlbench.cli import main
    from tests.conftest import tiny_argv

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    common = {"prune_schedule": "iterative", "prune_rounds": 3, "epochs": 3,
              "rewind_epoch": 1, "speed_repeats": 0}
    for rewind in ("weights", "lr"):
        assert main(["prune", *tiny_argv(rewind=rewind, **common), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    trains = client.search_runs(ids, "tags.`mlbench.stage` = 'train'")
    snap = [t for t in trains if t.data.params.get("base_rewind_epoch") == "1"]
    assert len(snap) == 1  # the weights run's base saved epoch 1; the lr run's needs none
    names = [a.path for a in client.list_artifacts(snap[0].info.run_id, "base_model")]
    assert "base_model/rewind-epoch-1.safetensors" in names
    runs = {r.data.params["rewind"]: r
            for r in client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")}
    assert runs["weights"].data.metrics["compression"] == pytest.approx(4.0, abs=0.01)
    cfg = tiny(rewind="lr", base_epochs=TINY["base_epochs"],
               **{k: v for k, v in common.items() if k != "speed_repeats"})
    lrs = [m.value for m in client.get_metric_history(runs["lr"].info.run_id, "lr")]
    # after each round's one epoch: the base schedule's lr at epoch k + 1 = 2 of 8
    assert lrs == pytest.approx([cfg.base.lr * lr_factor(cfg.base, 2, 1)] * 3)
