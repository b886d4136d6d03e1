"""Sweeps: strategies x compressions x seeds, one base model per seed, resumable.

A ``sweep`` run holds one nested ``prune`` run per cell. Every cell of seed s prunes the
base model of seed s (trained or found once, before its cells). A cell whose config
hash already has a FINISHED prune run anywhere in the store is skipped, so a sweep
started again with the same arguments finishes the grid and never redoes a cell.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from mlbench.config import RunConfig, TrackingConfig, config_hash
from mlbench.device import pick_device
from mlbench.distributed import Dist, from_env
from mlbench.errors import ConfigError, SweepIncomplete
from mlbench.grid import (  # noqa: F401 - re-exported: the grid lives in mlbench/grid.py
    DEFAULT_COMPRESSIONS,
    DEFAULT_SEEDS,
    Grid,
    parse_list,
)
from mlbench.masks import keep_count
from mlbench.progress import CellProgress
from mlbench.tracking import (
    CONFIG_HASH,
    CellTaken,
    Follower,
    Tracker,
    check_reachable,
    resolve_uri,
)


def sweep_name(cfg: RunConfig) -> str:
    """How a sweep reads in the MLflow run list: ``sweep-digits-lenet``."""
    return f"sweep-{cfg.data.dataset}-{cfg.model}"


def sweep_hash(cfg: RunConfig, grid: Grid) -> str:
    """Identifies a sweep: the same arguments give the same hash (and the same run)."""
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


def run_sweep(
    cfg: RunConfig, grid: Grid, tracking: TrackingConfig, workers: int = 1
) -> list[dict[str, float]]:
    """Run every unfinished cell of ``grid`` under one ``sweep`` run; return their results.

    All input is checked first: the grid, every compression against the model (the
    largest one must be reachable), the data and the tracking server. Base models are
    made once per seed, before any cell. Cells then run in ``workers`` processes that
    claim them through the tracking store, so each cell runs once even when several
    machines run the same sweep against one tracking server. Under torchrun, every
    cell trains data-parallel over the ranks, one cell after another.
    """
    from mlbench.pipeline import find_or_train_base, prepare

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    grid.check()
    check_reachable(resolve_uri(tracking.tracking_uri))
    dist = from_env(pick_device(cfg.device))
    if dist.enabled and workers > 1:
        raise ConfigError("--workers > 1 cannot be combined with torchrun: its processes "
                          "already train each cell together; use --workers 1")
    setup = prepare(dataclasses.replace(cfg, prune=dataclasses.replace(
        cfg.prune, strategy=grid.strategies[0], compression=1.0)), dist=dist)
    for c in grid.compressions:
        keep_count(setup.model, setup.prunable, c)
    tracker = Tracker(tracking) if dist.is_main else Follower(tracking)
    cells = grid.cells(cfg)
    with tracker.run("sweep", sweep_name(cfg), {CONFIG_HASH: sweep_hash(cfg, grid)},
                     resume=True) as sweep_id:
        tracker.log_params(
            {
                **{k: v for k, v in cfg.flat().items()
                   if k not in ("strategy", "compression", "prune_schedule")},
                "strategies": ",".join(grid.strategies),
                "prune_schedules": ",".join(grid.prune_schedules),
                "compressions": ",".join(f"{c:g}" for c in grid.compressions),
                "seeds": ",".join(map(str, grid.seeds)),
                "cells": len(cells),
            }
        )
        finished = tracker.finished_hashes("prune")
        todo_mask = torch.tensor([c.run_hash() not in finished for c in cells])
        todo = [c for c, do in zip(cells, dist.broadcast(todo_mask).tolist(), strict=True) if do]
        for seed in dict.fromkeys(c.seed for c in todo):  # one base model per seed, first
            first = next(c for c in todo if c.seed == seed)
            find_or_train_base(prepare(first, dist=dist), tracker)
        if dist.enabled:
            results, failed = work(todo, tracking, sweep_id, dist)
        elif workers == 1 or len(todo) <= 1:
            results, failed = work(todo, tracking, sweep_id)
        else:
            results, failed = _in_processes(todo, tracking, sweep_id, workers)
        tracker.log_metrics({"cells_run": len(results), "cells_found": len(cells) - len(todo)})
        if failed:
            raise SweepIncomplete(
                f"{len(failed)} cell(s) failed ({', '.join(failed)}); "
                "run the same command again to redo them"
            )
    return results


def work(
    cells: list[RunConfig], tracking: TrackingConfig, sweep_id: str, dist: Dist = Dist()
) -> tuple[list[dict[str, float]], list[str]]:
    """A worker: run each cell no one has finished or holds; return results and failures.

    A cell that fails is logged FAILED and left for the next run of the sweep; the
    worker goes on with the others (under torchrun a failure stops every rank).
    """
    from mlbench.pipeline import prepare, prune, run_name

    tracker = Tracker(tracking) if dist.is_main else Follower(tracking)
    results, failed = [], []
    progress = CellProgress(len(cells))  # one flushed line per cell: done/total, time left
    for cell in cells:
        token = cell.run_hash()
        if not dist.broadcast_flag(tracker.claimable("prune", token)):
            continue
        try:
            metrics = prune(prepare(cell, dist=dist), tracker, parent_run_id=sweep_id,
                            exclusive=True)
        except CellTaken:
            continue
        except Exception as exc:  # noqa: BLE001 - one bad cell must not stop the sweep
            if dist.enabled:
                raise
            failed.append(f"{run_name(cell)}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            continue
        results.append(metrics)
        if dist.is_main:
            progress.cell(
                f"{run_name(cell):<24} acc1={metrics['acc1']:.4f}  "
                f"acc5={metrics['acc5']:.4f}  compression={metrics['compression']:.3f}  "
                f"speedup={metrics['speedup']:.2f}"
            )
    return results, failed


def _worker_main(cells: list[RunConfig], tracking: TrackingConfig, sweep_id: str,
                 queue: Any) -> None:
    queue.put(work(cells, tracking, sweep_id))


def _in_processes(
    cells: list[RunConfig], tracking: TrackingConfig, sweep_id: str, workers: int
) -> tuple[list[dict[str, float]], list[str]]:
    """Run ``work`` in ``workers`` spawned processes, each starting at a different cell."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    tracking = dataclasses.replace(tracking, tracking_uri=resolve_uri(tracking.tracking_uri))
    # Each worker walks the whole list from its own offset: claims settle any overlap.
    procs = [
        ctx.Process(target=_worker_main,
                    args=(cells[i:] + cells[:i], tracking, sweep_id, queue))
        for i in range(0, len(cells), max(1, len(cells) // workers))[:workers]
    ]
    for p in procs:
        p.start()
    outcomes = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    results = [r for rs, _ in outcomes for r in rs]
    failed = [f for _, fs in outcomes for f in fs]
    failed += [f"worker exited with code {p.exitcode}" for p in procs if p.exitcode]
    return results, failed
