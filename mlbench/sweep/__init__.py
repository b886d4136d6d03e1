"""Sweeps: strategies x compressions x seeds (x schedules), one base model per seed.

A sweep is an Optuna study on ``--storage`` used as a work queue (``mlbench.tuning``'s
``WorkQueue``) whose items are typed (``SweepRun``, ``BaseItem``, ``CellItem``): the
sweep's own MLflow run, one base model per seed, then one item per cell. Any number of
worker processes, on any machines, run the same command against one storage and one
tracking server; each item is handed to exactly one of them by a storage transaction,
and a dead worker's item goes to another after the heartbeat grace period. A cell of
seed s prunes the base model of seed s, obtained the one way everything obtains it.

MLflow stays the record: a ``sweep`` run holds one nested ``prune`` run per cell; each
trial carries its run's id (``mlflow_run_id``) and each run its study and trial number.
A finished sweep started again finds every item done and runs nothing.
"""

from mlbench.grid import DEFAULT_COMPRESSIONS, DEFAULT_SEEDS, Grid, parse_list
from mlbench.sweep._items import BaseItem, CellItem, Item, SweepRun, item_of, key
from mlbench.sweep._plan import plan_items, study_name, sweep_hash, sweep_name
from mlbench.sweep._run import SweepSummary, run_sweep, runnable, work

__all__ = [
    "DEFAULT_COMPRESSIONS",
    "DEFAULT_SEEDS",
    "BaseItem",
    "CellItem",
    "Grid",
    "Item",
    "SweepRun",
    "SweepSummary",
    "item_of",
    "key",
    "parse_list",
    "plan_items",
    "run_sweep",
    "runnable",
    "study_name",
    "sweep_hash",
    "sweep_name",
    "work",
]
