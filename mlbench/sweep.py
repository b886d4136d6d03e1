"""Sweeps: strategies x compressions x seeds, one base model per seed, resumable.

A ``sweep`` run holds one nested ``prune`` run per cell. Every cell of seed s prunes the
base model of seed s (trained or found once, before its cells). A cell whose config
hash already has a FINISHED prune run anywhere in the store is skipped, so a sweep
started again with the same arguments finishes the grid and never redoes a cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from mlbench.config import RunConfig, TrackingConfig, config_hash
from mlbench.errors import ConfigError
from mlbench.masks import keep_count
from mlbench.strategies import STRATEGIES, strategy_names
from mlbench.tracking import CONFIG_HASH, Tracker, check_reachable, resolve_uri

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
    """Identifies a sweep: the same arguments give the same hash (and the same run)."""
    return config_hash(
        {
            **{k: v for k, v in cfg.run_key().items() if k not in ("strategy", "compression")},
            "seed": None,
            **dataclasses.asdict(grid),
        }
    )


def run_sweep(cfg: RunConfig, grid: Grid, tracking: TrackingConfig) -> list[dict[str, float]]:
    """Run every unfinished cell of ``grid`` under one ``sweep`` run; return their results.

    All input is checked first: the grid, every compression against the model (the
    largest one must be reachable), the data and the tracking server.
    """
    from mlbench.pipeline import find_or_train_base, prepare, prune

    grid.check()
    check_reachable(resolve_uri(tracking.tracking_uri))
    setup = prepare(dataclasses.replace(cfg, prune=dataclasses.replace(
        cfg.prune, strategy=grid.strategies[0], compression=1.0)))
    for c in grid.compressions:
        keep_count(setup.model, setup.prunable, c)
    tracker = Tracker(tracking)
    results = []
    token = sweep_hash(cfg, grid)
    with tracker.run("sweep", sweep_name(cfg), {CONFIG_HASH: token}, resume=True):
        tracker.log_params(
            {
                **{k: v for k, v in cfg.flat().items() if k not in ("strategy", "compression")},
                "strategies": ",".join(grid.strategies),
                "compressions": ",".join(f"{c:g}" for c in grid.compressions),
                "seeds": ",".join(map(str, grid.seeds)),
                "cells": len(grid.cells(cfg)),
            }
        )
        done = 0
        for seed in grid.seeds:
            seeded_cfg = dataclasses.replace(cfg, seed=seed)
            cells = [c for c in grid.cells(cfg) if c.seed == seed]
            todo = [c for c in cells if tracker.find_finished("prune", c.run_hash()) is None]
            done += len(cells) - len(todo)
            if not todo:
                continue
            base_setup = prepare(dataclasses.replace(seeded_cfg, prune=todo[0].prune))
            find_or_train_base(base_setup, tracker)
            for cell in todo:
                results.append(prune(prepare(cell), tracker))
        tracker.log_metrics({"cells_done": done + len(results), "cells_skipped": done})
    return results
