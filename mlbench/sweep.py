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
from collections.abc import Iterable
from dataclasses import dataclass

from mlbench.config import RunConfig, config_hash
from mlbench.errors import ConfigError
from mlbench.strategies import STRATEGIES, strategy_names

DEFAULT_COMPRESSIONS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)

DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Grid:
    """The cells of a sweep: every strategy at every compression for every seed."""

    strategies: tuple[str, ...] = tuple(strategy_names()[:5])
    compressions: tuple[float, ...] = DEFAULT_COMPRESSIONS
    seeds: tuple[int, ...] = DEFAULT_SEEDS

    def cells(self, base: RunConfig) -> list[RunConfig]:
        """One RunConfig per cell, grouped by seed (so each base model is made once)."""
        return [
            dataclasses.replace(
                base,
                seed=seed,
                prune=dataclasses.replace(base.prune, strategy=strategy, compression=c),
            )
            for seed in self.seeds
            for strategy in self.strategies
            for c in self.compressions
        ]

    def check(self) -> None:
        """Known strategies, compressions >= 1, non-negative seeds, nothing empty."""
        for name, values in dataclasses.asdict(self).items():
            if not values:
                raise ConfigError(f"--{name} must name at least one value")
        for strategy in self.strategies:
            STRATEGIES.get(strategy)
        for c in self.compressions:
            if c < 1:
                raise ConfigError(f"--compressions must all be >= 1, got {c:g}")
        for s in self.seeds:
            if s < 0:
                raise ConfigError(f"--seeds must all be >= 0, got {s}")


def parse_list(text: str | Iterable[object], kind: type, option: str) -> tuple:
    """``"1,2,4"`` (or a YAML list) -> ``(1.0, 2.0, 4.0)``, naming the bad item if any."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        raw = item.strip() if isinstance(item, str) else item
        if raw == "":
            continue
        try:
            value = kind(raw)
            if kind is int and isinstance(raw, float) and raw != int(raw):
                raise ValueError
        except (TypeError, ValueError):
            name = "an integer" if kind is int else "a number" if kind is float else "a name"
            raise ConfigError(f"{option}: expected {name}, got {raw!r}") from None
        out.append(value)
    return tuple(out)


def sweep_name(cfg: RunConfig) -> str:
    """How a sweep reads in the MLflow run list: ``sweep-digits-lenet``."""
    return f"sweep-{cfg.data.dataset}-{cfg.model}"


def sweep_hash(cfg: RunConfig, grid: Grid) -> str:
    """Identifies a sweep: the same arguments give the same hash (and the same study)."""
    return config_hash(
        {
            **{k: v for k, v in cfg.run_key().items() if k not in ("strategy", "compression")},
            "seed": None,
            **dataclasses.asdict(grid),
        }
    )


def study_name(cfg: RunConfig, grid: Grid) -> str:
    """The Optuna study of a sweep: ``sweep-digits-lenet-<hash>``."""
    return f"{sweep_name(cfg)}-{sweep_hash(cfg, grid)[:12]}"


def base_key(seed: int) -> str:
    """The queue item of seed ``seed``'s base model."""
    return f"base:s{seed}"


def cell_key(cell: RunConfig) -> str:
    """The queue item of one cell: ``cell:global_weight:c8:s0``."""
    return f"cell:{cell.prune.strategy}:c{cell.prune.compression:g}:s{cell.seed}"


def keys(cfg: RunConfig, grid: Grid) -> dict[str, RunConfig]:
    """Every item of the sweep, base models first, with the config it runs."""
    cells = grid.cells(cfg)
    bases = {base_key(seed): next(c for c in cells if c.seed == seed) for seed in grid.seeds}
    return {**bases, **{cell_key(c): c for c in cells}}



__all__ = ["DEFAULT_COMPRESSIONS", "DEFAULT_SEEDS", "Grid", "base_key", "cell_key", "keys",
           "parse_list", "study_name", "sweep_hash", "sweep_name"]
