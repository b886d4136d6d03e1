"""Optuna: the only package that imports it. Fair tuning studies, and the sweep's queue.

One study per strategy over the same search space, with the same budget, sampler,
sampler seed and pruner; the objective is val acc1 (the test split is never seen); every
trial is an MLflow ``trial`` run; the best configuration of each strategy then runs on
the test split over several seeds as ``prune`` runs tagged ``mlbench.tuned``. Beside
the studies, ``WorkQueue`` (a study used as a queue: a sweep's, see ``mlbench.sweep``).
"""

from mlbench.tuning._audit import COLUMNS, format_table, summarize
from mlbench.tuning._budget import SURPLUS, run_budget
from mlbench.tuning._objective import EPOCHS_SPENT, MLFLOW_RUN_ID, Objective, suggest, with_params
from mlbench.tuning._plots import PLOTS, save_plots
from mlbench.tuning._queue import Job, Progress, WorkQueue, drain, queue_once, wait_for
from mlbench.tuning._sampler import TrialSeededTPE, make_pruner, startup_trials
from mlbench.tuning._settings import DEFAULT_SEEDS, DEFAULT_TRIALS, TuneConfig
from mlbench.tuning._storage import (
    HEARTBEAT_S,
    StorageSpec,
    default_storage,
    open_storage,
    parse_storage,
)
from mlbench.tuning._storage_queue import DEFAULT_GRACE_S, open_queue
from mlbench.tuning._study import run_tune, run_tuned, tune_strategy

__all__ = [
    "COLUMNS",
    "DEFAULT_GRACE_S",
    "DEFAULT_SEEDS",
    "DEFAULT_TRIALS",
    "EPOCHS_SPENT",
    "HEARTBEAT_S",
    "Job",
    "MLFLOW_RUN_ID",
    "PLOTS",
    "SURPLUS",
    "Objective",
    "Progress",
    "StorageSpec",
    "TrialSeededTPE",
    "TuneConfig",
    "WorkQueue",
    "default_storage",
    "drain",
    "format_table",
    "make_pruner",
    "open_queue",
    "open_storage",
    "parse_storage",
    "queue_once",
    "run_budget",
    "run_tune",
    "run_tuned",
    "save_plots",
    "startup_trials",
    "suggest",
    "summarize",
    "tune_strategy",
    "wait_for",
    "with_params",
]
