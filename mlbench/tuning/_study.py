"""Fair tuning end to end: one study per strategy, then the best configs on the test split.

``run_tune`` checks all input before creating anything (a study, a run), finds or
trains the base model once, runs each strategy's study inside its ``tune`` run, and then
runs each study's best configuration as ordinary ``prune`` runs, one per test seed,
tagged ``mlbench.tuned``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
import torch

from mlbench.config import RunConfig, TrackingConfig
from mlbench.errors import ConfigError
from mlbench.kinds import kind_of
from mlbench.recipe import Setup, load_base, prepare, prune
from mlbench.runs import obtain_base
from mlbench.schedules import schedule_of
from mlbench.tracking import (
    BaseModel,
    Tracker,
    TunedTracker,
    check_reachable,
    resolve_uri,
    tune_tags,
)
from mlbench.tuning._audit import COLUMNS, summarize
from mlbench.tuning._budget import run_budget
from mlbench.tuning._objective import (
    EPOCHS_SPENT,
    MLFLOW_RUN_ID,
    Objective,
    default_params,
    with_params,
)
from mlbench.tuning._plots import save_plots
from mlbench.tuning._queue import STUDY_KIND, Job, WorkQueue, drain, queue_once
from mlbench.tuning._sampler import TrialSeededTPE, make_pruner, startup_trials
from mlbench.tuning._settings import TuneConfig
from mlbench.tuning._storage import StorageSpec, open_storage, parse_storage

OBJECTIVE = "val_acc1"  # what every tuning study maximizes (its metric name)
BUDGET = "mlbench.trials"  # study user attribute: its trial budget now
FIRST_BUDGET = "mlbench.first_trials"  # ... and the budget it was first given
DEFAULT_TRIAL = "mlbench.default_recipe"  # trial user attribute: the untuned recipe


def tune_strategy(
    setup: Setup,
    tracker: Tracker,
    base_state: Mapping[str, torch.Tensor],
    tune: TuneConfig,
    storage: optuna.storages.BaseStorage,
    spec: StorageSpec,
) -> dict[str, Any]:
    """Run (or resume, or join) the study of ``setup.cfg``'s strategy; return its audit row.

    The study lives in ``storage`` under ``tune.study_name(cfg)``; its ``tune`` run holds
    a nested ``trial`` run per trial, the audit table and Optuna's plots.
    """
    cfg, space = setup.cfg, tune.space
    name = tune.study_name(cfg)
    cap = space.epochs_cap(cfg.finetune)
    sampler = TrialSeededTPE(cfg.seed, startup_trials(tune.trials))
    pruner = make_pruner(tune.trials)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                pruner=pruner, direction="maximize", load_if_exists=True)
    first_budget = _budget(study, tune.trials, default_params(cfg, space))
    tags = tune_tags(name, spec.display, space.hash())
    with tracker.run("tune", name, tags, run_id=_tune_run_id(study, tracker, tags)) \
            as tune_run_id:
        tracker.log_params({
            **{k: v for k, v in cfg.flat().items() if k not in space.names()},
            "trials": first_budget,
            "search_space": json.dumps(space.as_dict(), sort_keys=True),
            "epochs_cap": cap, "sampler": str(sampler), "sampler_seed": cfg.seed,
            "pruner": type(pruner).__name__, "objective": "val_acc1 (last epoch)",
            "study": name, "storage": spec.display,
        })
        study.set_user_attr("strategy", cfg.prune.strategy)
        study.set_user_attr("search_space_hash", space.hash())
        objective = Objective(setup, tracker, base_state, space, name)
        run_budget(study, objective, tune.trials, after_trial=_print_trial)
        # Trials failed by a stopped heartbeat: their process died with its run RUNNING.
        tracker.fail_running_trials(name, [t.number for t in study.trials
                                           if t.state == optuna.trial.TrialState.FAIL])
        row = {**summarize(study, tune.trials, cap, space.hash()), "tune_run_id": tune_run_id}
        _log_audit(tracker, study, row)
    return row


def _budget(study: optuna.Study, trials: int, defaults: Mapping[str, Any]) -> int:
    """Name the objective, try the default recipe first, and settle the trial budget.

    A new study enqueues the default recipe as its first trial and records ``trials``.
    A study started before with a smaller budget is extended to ``trials``, said in one
    line (a smaller one is refused by ``check_budgets`` before any work). Returns the
    budget the study was first given (the tune run's ``trials`` param).
    """
    with warnings.catch_warnings():  # experimental in Optuna, shown by optuna-dashboard
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE])
    study.set_user_attr(STUDY_KIND, "tuning")
    first = study.user_attrs.get(BUDGET)
    if first is None:
        if not study.trials:
            study.enqueue_trial(dict(defaults), user_attrs={DEFAULT_TRIAL: True})
        study.set_user_attr(BUDGET, trials)
        study.set_user_attr(FIRST_BUDGET, trials)
        return trials
    if trials > study.user_attrs[BUDGET]:
        print(f"study {study.study_name}: extending its budget from "
              f"{study.user_attrs[BUDGET]} to {trials} trials", flush=True)
        study.set_user_attr(BUDGET, trials)
    return int(study.user_attrs.get(FIRST_BUDGET, first))


def check_budgets(storage: optuna.storages.BaseStorage, names: list[str], trials: int) -> None:
    """A ConfigError, before any work, if a study of ``names`` already holds a larger
    budget than ``trials``: fewer trials cannot be taken back from a study."""
    for name in names:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        had = study.user_attrs.get(BUDGET)
        if had is not None and trials < had:
            raise ConfigError(
                f"--trials {trials} is below the {had} trials study {name} already has; "
                f"use --trials {had} to finish it (or more to extend it), or another "
                "--study-prefix for a new study")


def _tune_run_id(study: optuna.Study, tracker: Tracker, tags: Mapping[str, str]) -> str:
    """The study's ``tune`` run: made by its first worker and kept in the study."""
    found = study.user_attrs.get(MLFLOW_RUN_ID)
    if found:
        return found
    study.set_user_attr(MLFLOW_RUN_ID, tracker.create_run("tune", study.study_name, tags))
    return study.user_attrs[MLFLOW_RUN_ID]


def run_tuned(cfg: RunConfig, row: Mapping[str, Any], tracker: Tracker, seeds: tuple[int, ...],
              storage: optuna.storages.BaseStorage, base: BaseModel) -> list[dict[str, float]]:
    """The study's best configuration on the test split: a tuned ``prune`` run per seed.

    The seeds are items of a work queue (study ``<study>-tuned``): each runs once, however
    many workers tune, and a resumed tune runs only what is not done.
    """
    best = with_params(cfg, json.loads(row["best_params"]))
    tuned = TunedTracker(tracker, row["tune_run_id"], row["study"])
    queue = WorkQueue.open(storage, f"{row['study']}-tuned",
                           [json.dumps({"seed": s}) for s in seeds])
    results = []

    def do(job: Job) -> None:
        seed = int(json.loads(job.key)["seed"])
        cell = dataclasses.replace(best, seed=seed)
        ids: list[str] = []
        metrics = prune(prepare(cell), tuned, base, on_run=ids.append)
        job.complete(ids[0])
        results.append(metrics)
        print(f"tuned {cell.prune.strategy:<14} seed {seed}  acc1={metrics['acc1']:.4f}  "
              f"acc5={metrics['acc5']:.4f}  compression={metrics['compression']:.3f}",
              flush=True)

    drain(queue, do)
    return results


def run_tune(cfg: RunConfig, tune: TuneConfig, tracking: TrackingConfig) -> list[dict[str, Any]]:
    """Check everything, tune every strategy, then run the tuned configs on test.

    Returns the audit rows, one per strategy. Raises ConfigError (nothing created) for
    bad input: strategies, budget, seeds, storage scheme or an unreachable database,
    tracking server, data, model or compression.
    """
    tune.check()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    uri = resolve_uri(tracking.tracking_uri)
    spec = parse_storage(tune.storage, uri)
    check_reachable(uri)
    for strategy in tune.strategies:  # every name, before any data is read
        kind_of(strategy)
    first = _with_strategy(cfg, tune.strategies[0])
    setup = prepare(first)
    schedule = schedule_of(cfg.prune.prune_schedule)
    for strategy in tune.strategies[1:]:  # each kind checks model, target and schedule
        kind_of(strategy).check(dataclasses.replace(setup, cfg=_with_strategy(cfg, strategy)),
                                schedule)
    with_params(first, {})  # the recipe outside the space is valid
    storage = open_storage(spec)
    check_budgets(storage, [tune.study_name(_with_strategy(cfg, s)) for s in tune.strategies],
                  tune.trials)
    tracker = Tracker(tracking)
    with _project_run(tracker, cfg):
        once = queue_once(storage, tune.study_prefix)
        base = obtain_base(setup, tracker, once=once)
        load_base(setup, tracker, base)
        base_state = {k: v.detach().clone() for k, v in setup.model.state_dict().items()}
        rows = []
        for strategy in tune.strategies:
            strategy_setup = dataclasses.replace(setup, cfg=_with_strategy(cfg, strategy))
            rows.append(tune_strategy(strategy_setup, tracker, base_state, tune, storage, spec))
        for row in rows:
            run_tuned(_with_strategy(cfg, row["strategy"]), row, tracker, tune.seeds, storage,
                      base)
    print(f"studies in {spec.display}; browse them with: optuna-dashboard {spec.dashboard_arg()}")
    return rows


def _with_strategy(cfg: RunConfig, strategy: str) -> RunConfig:
    return dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, strategy=strategy))


@contextlib.contextmanager
def _project_run(tracker: Tracker, cfg: RunConfig) -> Iterator[None]:
    """Under ``mlflow run -e tune``, the run MLflow opened holds the tune runs."""
    if not tracker.inside_project:
        yield
        return
    with tracker.run("tune", f"tune-{cfg.data.dataset}-{cfg.model}-c{cfg.prune.compression:g}"):
        yield


def _log_audit(tracker: Tracker, study: optuna.Study, row: Mapping[str, Any]) -> None:
    """The audit table (CSV and JSON), its numbers as metrics, and Optuna's plots."""
    tracker.log_metrics({k: float(row[k]) for k in (
        "trials_complete", "trials_pruned", "trials_failed", "epochs_spent", "best_val_acc1")})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with (folder / "budget.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*COLUMNS, "tune_run_id"])
            writer.writeheader()
            writer.writerow(row)
        (folder / "budget.json").write_text(json.dumps(row, indent=2, sort_keys=True))
        outcome = save_plots(study, folder)
        (folder / "plots.json").write_text(json.dumps(outcome, indent=2, sort_keys=True))
        for path in sorted(folder.iterdir()):
            tracker.log_file(path)


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if trial.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
        return
    value = trial.value if trial.value is not None else trial.intermediate_values.get(
        max(trial.intermediate_values, default=0), float("nan"))
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in trial.params.items())
    print(f"{study.user_attrs.get('strategy', ''):<14} trial {trial.number:<3} "
          f"{trial.state.name:<8} val_acc1={value:.4f}  "
          f"epochs={trial.user_attrs.get(EPOCHS_SPENT, 0)}  {params}", flush=True)
