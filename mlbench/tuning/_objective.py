"""The objective: the recipe in validation mode with a trial's hyperparameters; val acc1.

A trial runs ``recipe.finetune(validation=True)``, the very code of a prune run, with
the test split untouched: every kind of pruning and every schedule tunes alike. After
every epoch the val acc1 goes to the trial (for the pruner) and to the trial's MLflow
run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import optuna
import torch

from mlbench.config import RunConfig
from mlbench.recipe import Setup, finetune, run_name
from mlbench.search_space import SearchSpace
from mlbench.tracking import Tracker, trial_run

EPOCHS_SPENT = "epochs_spent"  # trial user attribute: fine-tuning epochs the trial ran
MLFLOW_RUN_ID = "mlflow_run_id"  # trial user attribute: its ``trial`` run


class _Stop(Exception):  # noqa: N818 - a signal from the epoch callback, not an error
    """The pruner said stop."""


def suggest(trial: optuna.trial.BaseTrial, space: SearchSpace) -> dict[str, Any]:
    """Draw every parameter of ``space`` from ``trial`` (a real or a FixedTrial)."""
    params: dict[str, Any] = {}
    for p in space.params:
        if p.kind == "choice":
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.kind == "int":
            step = int(p.step or 1)
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=step,
                                               log=p.log)
        else:
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
    return params


def with_params(cfg: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """``cfg`` with its fine-tuning recipe set to ``params`` (checked)."""
    tuned = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, **params))
    tuned.check()
    return tuned


def default_params(cfg: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """The default recipe's value of every searched option that the space can hold.

    A numeric default outside its range is moved to the nearest bound; a choice the
    space does not list is left to the sampler. Enqueued as every study's first trial,
    so a short tune never comes out worse than the untuned recipe for not trying it.
    """
    out: dict[str, Any] = {}
    for p in space.params:
        value = getattr(cfg.finetune, p.name)
        if p.kind == "choice":
            if value in p.choices:
                out[p.name] = value
        else:
            low, high = p.low, p.high
            value = min(max(value, low), high)
            out[p.name] = int(value) if p.kind == "int" else float(value)
    return out


class Objective:
    """``objective(trial) -> val acc1``: the recipe in validation mode, one strategy.

    Every trial runs ``recipe.finetune`` (any kind of pruning, any schedule) on the base
    weights with the trial's fine-tuning parameters; the test split is never read.

    Args:
        setup: data and model from ``recipe.prepare`` with the strategy set.
        tracker: where each trial's ``trial`` run goes (nested under the active run).
        base_state: the base model's weights, restored before every trial.
        space: the search space.
        study: the study name, recorded on each trial run.

    Example:
        >>> objective = Objective(setup, tracker, base_state, space, "my-study")
        >>> objective(optuna.trial.FixedTrial({"lr": 0.05, "epochs": 2}))  # doctest: +SKIP
        0.93
    """

    def __init__(self, setup: Setup, tracker: Tracker, base_state: Mapping[str, torch.Tensor],
                 space: SearchSpace, study: str) -> None:
        self.setup = setup
        self.tracker = tracker
        self.base_state = base_state
        self.space = space
        self.study = study

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        """Fine-tune with the trial's parameters; return the last epoch's val acc1.

        Raises optuna.TrialPruned when the pruner stops the trial (its run is FINISHED
        with ``mlbench.trial_state = PRUNED``).
        """
        params = suggest(trial, self.space)
        setup = dataclasses.replace(self.setup, cfg=with_params(self.setup.cfg, params))
        setup.model.load_state_dict(self.base_state)
        curve: list[float] = []

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            log.epoch(epoch, metrics)
            curve.append(metrics["val_acc1"])
            trial.report(metrics["val_acc1"], epoch)
            if trial.should_prune():
                raise _Stop

        name = f"{run_name(setup.cfg)}-t{trial.number}"
        with trial_run(self.tracker, self.study, trial.number, name, params) as log:
            state = "COMPLETE"
            try:
                value = finetune(setup, on_epoch=on_epoch, validation=True).metrics["val_acc1"]
            except _Stop:
                state, value = "PRUNED", curve[-1]
            log.finish(state, value, len(curve))
        trial.set_user_attr(EPOCHS_SPENT, len(curve))
        trial.set_user_attr(MLFLOW_RUN_ID, log.run_id)
        if state == "PRUNED":
            raise optuna.TrialPruned(f"after epoch {len(curve)}: val_acc1 {value:.4f}")
        return value
