"""Sweeps: strategies x compressions x seeds, one base model per seed, on a work queue.

A sweep is an Optuna study on ``--storage`` used as a work queue (``mlbench.tuning``'s
``WorkQueue``): one item per seed's base model, then one per cell. Any number of worker
processes, on any machines, run the same command against one storage and one tracking
server; each item is handed to exactly one of them by a storage transaction, and a
dead worker's item goes to another after the heartbeat grace period. A cell of seed s
runs only once the base model of seed s is done, and prunes that very model.

MLflow stays the record: a ``sweep`` run holds one nested ``prune`` run per cell; each
trial carries its run's id (``mlflow_run_id``) and each run its study and trial number.
A finished sweep started again finds every item done and runs nothing.
"""

from __future__ import annotations

import dataclasses

from mlbench.config import RunConfig, config_hash
from mlbench.grid import (  # re-exported: the grid lives in mlbench/grid.py
    DEFAULT_COMPRESSIONS,
    DEFAULT_SEEDS,
    Grid,
    parse_list,
)


def sweep_name(cfg: RunConfig) -> str:
    """How a sweep reads in the MLflow run list: ``sweep-digits-lenet``."""
    return f"sweep-{cfg.data.dataset}-{cfg.model}"


def sweep_hash(cfg: RunConfig, grid: Grid) -> str:
    """Identifies a sweep: the same arguments give the same hash (and the same study)."""
    grid_key = dataclasses.asdict(grid)
    if grid.prune_schedules == ("oneshot",):  # one-shot sweeps keep the hashes they had
        del grid_key["prune_schedules"]
    return config_hash(
        {
            **{k: v for k, v in cfg.run_key().items() if k not in ("strategy", "compression")},
            "seed": None,
            **grid_key,
        }
    )


def study_name(cfg: RunConfig, grid: Grid) -> str:
    """The Optuna study of a sweep: ``sweep-digits-lenet-<hash>``."""
    return f"{sweep_name(cfg)}-{sweep_hash(cfg, grid)[:12]}"


def base_key(seed: int) -> str:
    """The queue item of seed ``seed``'s base model."""
    return f"base:s{seed}"


def cell_key(cell: RunConfig) -> str:
    """The queue item of one cell: ``cell:global_weight:c8:s0`` (one-shot), or with its
    schedule, ``cell:global_weight:iterative:c8:s0``."""
    schedule = "" if cell.prune.prune_schedule == "oneshot" else f"{cell.prune.prune_schedule}:"
    return f"cell:{cell.prune.strategy}:{schedule}c{cell.prune.compression:g}:s{cell.seed}"


def keys(cfg: RunConfig, grid: Grid) -> dict[str, RunConfig]:
    """Every item of the sweep, base models first, with the config it runs."""
    cells = grid.cells(cfg)
    bases = {base_key(seed): next(c for c in cells if c.seed == seed) for seed in grid.seeds}
    return {**bases, **{cell_key(c): c for c in cells}}



__all__ = ["DEFAULT_COMPRESSIONS", "DEFAULT_SEEDS", "Grid", "base_key", "cell_key", "keys",
           "parse_list", "study_name", "sweep_hash", "sweep_name"]
