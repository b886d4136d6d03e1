"""A sweep's identity (name, hash, study) and its items."""

from __future__ import annotations

import dataclasses

from mlbench.config import PruneConfig, RunConfig, config_hash
from mlbench.grid import Grid
from mlbench.sweep._items import BaseItem, CellItem, Item, SweepRun, key


def sweep_name(cfg: RunConfig) -> str:
    """How a sweep reads in the MLflow run list: ``sweep-digits-lenet``."""
    return f"sweep-{cfg.data.dataset}-{cfg.model}"


def sweep_hash(cfg: RunConfig, grid: Grid) -> str:
    """Identifies a sweep: the same arguments give the same hash (and the same study)."""
    grid_key = dataclasses.asdict(grid)
    if grid.prune_schedules == (PruneConfig().prune_schedule,):  # keep the hashes they had
        del grid_key["prune_schedules"]
    for name in ("calib_seeds", "curve_strategies", "curve_compressions"):
        if name not in grid.extras():  # post-training keys: only where set
            del grid_key[name]
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


def plan_items(cfg: RunConfig, cells: list[RunConfig]) -> dict[str, tuple[Item, RunConfig]]:
    """Every item of the sweep by queue key, with the config it runs: the sweep's run,
    then a base model per seed, then the cells (grouped by seed)."""
    out: dict[str, tuple[Item, RunConfig]] = {key(SweepRun()): (SweepRun(), cfg)}
    for cell in cells:
        base = BaseItem(cell.seed)
        out.setdefault(key(base), (base, cell))
    for cell in cells:
        item = CellItem.of(cell)
        out[key(item)] = (item, cell)
    return out


__all__ = ["plan_items", "study_name", "sweep_hash", "sweep_name"]
