"""A sweep's workers: take items from the sweep's queue until none is left, anywhere.

``run_sweep`` checks all input, opens the sweep's study (``study_name``) on the storage,
enqueues what is not done, and works: in this process, plus ``workers - 1`` spawned
ones. Every worker, here or on another machine, runs the queue's one drain loop: take a
waiting item (cells whose base model is done before the others), do it as one MLflow
run, report it. A cell obtains its base model the one way everything does
(``runs.obtain_base``): found, or waited for while the worker holding its base item
trains it (or trained here, if that item is waiting: a dead worker's, re-queued). When
nothing is waiting, a worker waits while other live workers hold items and stops when
every item is done or given up; then the sweep either ends its ``sweep`` run FINISHED
or names, in one line, what it could not finish.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass

from mlbench.config import CELL_KEYS, RunConfig, TrackingConfig
from mlbench.device import pick_device
from mlbench.distributed import Dist, from_env
from mlbench.errors import ConfigError, SweepIncomplete, TrackingRefused, TrackingUnavailable
from mlbench.grid import Grid
from mlbench.kinds import kind_of
from mlbench.progress import CellProgress
from mlbench.recipe import prepare, prune, run_name
from mlbench.runs import obtain_base
from mlbench.schedules import schedule_of
from mlbench.sweep._items import BaseItem, CellItem, Item, SweepRun, item_of, key
from mlbench.sweep._plan import plan_items, study_name, sweep_hash, sweep_name
from mlbench.tracking import (
    CONFIG_HASH,
    STORAGE,
    STUDY,
    TRIAL_NUMBER,
    Follower,
    Tracker,
    check_reachable,
    given_up,
    quiet,
    resolve_uri,
)
from mlbench.tuning import (
    DEFAULT_GRACE_S,
    Job,
    Progress,
    StorageSpec,
    WorkQueue,
    drain,
    open_queue,
    parse_storage,
    wait_for,
)


@dataclass(frozen=True)
class SweepSummary:
    """What a finished sweep did: items run by this command, and all items done."""

    study: str
    storage: str
    sweep_run_id: str
    ran: int
    total: int


@dataclass
class _Plan:
    """What every worker of one sweep shares: its items and study, and what it needs to
    make the sweep's run (the first item)."""

    items: dict[str, tuple[Item, RunConfig]]
    study: str
    cfg: RunConfig
    grid: Grid
    cells: int
    storage: str
    sweep_run_id: str = ""


def runnable(strategy: str, schedule: str) -> bool:
    """Can ``strategy``'s kind prune along ``schedule``? (Other cells are left out.)"""
    return kind_of(strategy).runs(schedule_of(schedule))


def run_sweep(cfg: RunConfig, grid: Grid, tracking: TrackingConfig, *, workers: int = 1,
              storage: str | None = None, grace_s: int = DEFAULT_GRACE_S) -> SweepSummary:
    """Run every unfinished item of the sweep of ``grid`` until all are done anywhere.

    All input is checked first (grid, every cell's kind against the model and target,
    data, tracking server, storage). Raises SweepIncomplete, naming them, when items
    were given up after their retries; running the same command again retries them.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if grace_s < 2:
        raise ConfigError(f"--grace must be >= 2 seconds, got {grace_s}")
    grid.check()
    uri = resolve_uri(tracking.tracking_uri)
    check_reachable(uri)
    tracking = dataclasses.replace(tracking, tracking_uri=uri)
    spec = parse_storage(storage, uri)
    dist = from_env(pick_device(cfg.device))
    if dist.enabled and workers > 1:
        raise ConfigError("--workers > 1 cannot be combined with torchrun: its processes "
                          "already train each cell together; use --workers 1")
    cells = grid.cells(cfg, runnable)
    setup = prepare(cfg, prune=False, dist=dist)
    for cell in {(c.prune.strategy, c.prune.prune_schedule, c.prune.compression): c
                 for c in cells}.values():  # each kind checks its cells, before any work
        kind_of(cell.prune.strategy).check(dataclasses.replace(setup, cfg=cell),
                                           schedule_of(cell.prune.prune_schedule))
    plan = _Plan(plan_items(cfg, cells), study_name(cfg, grid), cfg, grid, len(cells),
                 spec.display)
    if not dist.is_main:
        return _follow(plan, Follower(tracking), dist)
    queue = open_queue(spec, plan.study, grace_s)
    queue.enqueue(plan.items)
    tracker = Tracker(tracking)
    plan.sweep_run_id = wait_for(queue, key(SweepRun()),
                                 lambda job: _do(job, job.key, plan, tracker, dist, queue))
    if tracker.inside_project and "MLFLOW_RUN_ID" in os.environ:  # a rerun under `mlflow
        # run` finds the sweep run made before: the opened run says which sweep it
        # continued, and no cell may resume it (the variable goes).
        tracker.tag_run(tracker.adopt_project_run(), {"mlbench.continued_sweep_run_id":
                                                      plan.sweep_run_id})
    children = _spawn(workers - 1, plan, tracking, spec, grace_s)
    try:
        ran = work(queue, plan, tracker, dist)
    except (TrackingUnavailable, TrackingRefused):  # no worker here can track
        for child in children:
            child.terminate()  # their runs are marked FAILED by the next command
        raise
    for child in children:
        child.join()
    progress = queue.progress()
    if not progress.finished:
        missing = {**progress.lost, **dict.fromkeys(progress.running | progress.waiting,
                                                     "unfinished")}
        raise SweepIncomplete(
            f"{len(missing)} of {len(plan.items)} items not done ("
            + ", ".join(f"{_label(k)}: {v}" for k, v in sorted(missing.items()))
            + "); run the same command again to retry them")
    tracker.log_to(plan.sweep_run_id, metrics={"cells_done": plan.cells})
    tracker.end_run(plan.sweep_run_id)
    return SweepSummary(plan.study, spec.display, plan.sweep_run_id, ran, len(plan.items))


def work(queue: WorkQueue, plan: _Plan, tracker: Tracker, dist: Dist = Dist()) -> int:
    """Drain the sweep's queue (cells whose base model is done first); return how many
    items this worker did. An item that fails is reported in one line and re-queued."""
    progress = CellProgress(plan.cells)

    def ready(text: str, state: Progress) -> bool:
        item = item_of(text)
        return not isinstance(item, CellItem) or key(item.base()) in state.done

    def do(job: Job) -> None:
        line = _do(job, job.key, plan, tracker, dist, queue)
        if line is not None:
            cells = [k for k in queue.progress().done if isinstance(item_of(k), CellItem)]
            progress.done = max(len(cells) - 1, progress.done)  # all workers' cells
            progress.cell(line)

    def failed(text: str, exc: Exception) -> None:
        if dist.enabled or isinstance(exc, TrackingUnavailable | TrackingRefused):
            raise exc  # no cell can be tracked here: stop, and say so in one line
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"mlbench: {_label(text)} failed ({type(exc).__name__}: {first}); re-queued "
              "while retries are left", file=sys.stderr, flush=True)

    def waiting(keys: set[str]) -> None:  # say why nothing happens
        print(f"mlbench: waiting for {', '.join(sorted(_label(k) for k in keys))}, held by "
              "other workers (a dead worker's item comes back after the grace period)",
              file=sys.stderr, flush=True)

    ran = drain(queue, do, first=ready, on_error=failed, on_wait=waiting)
    if dist.enabled:
        dist.broadcast_bytes(b"")  # the other ranks stop
    return ran


def _label(text: str) -> str:
    """An item as one line names it: ``sweep``, ``base s0``, ``global_weight-c8-s0``."""
    item = item_of(text)
    if isinstance(item, CellItem):
        return run_name(item_config(item))  # its calibration seed too, if not the default
    return f"base s{item.seed}" if isinstance(item, BaseItem) else "sweep"


def item_config(item: CellItem) -> RunConfig:
    """The (default-recipe) config of a cell, for its name."""
    cfg = RunConfig()
    calib = cfg.prune.calib_seed if item.calib_seed is None else item.calib_seed
    return dataclasses.replace(cfg, seed=item.seed, prune=dataclasses.replace(
        cfg.prune, strategy=item.strategy, compression=item.compression,
        prune_schedule=item.schedule, calib_seed=calib))


def _open_sweep_run(tracker: Tracker, plan: _Plan) -> str:
    """The sweep's MLflow run (the parent of its cells' runs), with the grid as params."""
    cfg, grid = plan.cfg, plan.grid
    tags = {CONFIG_HASH: sweep_hash(cfg, grid), STUDY: plan.study, STORAGE: plan.storage}
    if tracker.inside_project:  # `mlflow run -e sweep` opened the run: it is the sweep's
        run_id = tracker.adopt_project_run()  # no cell may resume it
        tracker.tag_run(run_id, {**tags, "mlbench.stage": "sweep",
                                 "mlflow.runName": sweep_name(cfg)})
    else:
        run_id = tracker.create_run("sweep", sweep_name(cfg), tags)
    params = {
        **{k: v for k, v in cfg.flat().items()
           if k not in CELL_KEYS},  # the grid's axes, logged below as lists
        "strategies": ",".join(grid.strategies),
        "prune_schedules": ",".join(grid.prune_schedules),
        "compressions": ",".join(f"{c:g}" for c in grid.compressions),
        "seeds": ",".join(map(str, grid.seeds)),
        **{k: ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
           for k, values in grid.extras().items()},
        "cells": plan.cells,
        "study": plan.study,
        "storage": plan.storage,
    }
    tracker.log_to(run_id, params=params)
    return run_id


def _do(job: Job | None, text: str, plan: _Plan, tracker: Tracker, dist: Dist,
        queue: WorkQueue | None) -> str | None:
    """Do one item on every rank (rank 0 holds ``job`` and tells the others its key); a
    finished cell returns its line for the progress."""
    if dist.enabled and dist.is_main:
        dist.broadcast_bytes(text.encode())
    item, cfg = plan.items[text]
    if isinstance(item, SweepRun):
        if job is not None:
            job.complete(_open_sweep_run(tracker, plan))
        return None
    if job is not None and job.previous_run_id:
        tracker.fail_if_running(job.previous_run_id)  # its worker died: not left RUNNING
    tags = {STUDY: plan.study, TRIAL_NUMBER: str(job.number) if job else ""}
    record = job.set_run_id if job is not None else None
    if isinstance(item, BaseItem):
        made = obtain_base(prepare(cfg, prune=False, dist=dist), tracker, tags=tags,
                           on_run=record)
        if job is not None:
            job.complete(made.run_id)
        return None
    setup = prepare(cfg, dist=dist)
    base_key = key(item.base())

    def once(_key: str, _work: object) -> str:  # the base item of this seed, in the queue
        if queue is None:  # ranks > 0: rank 0 made sure it is done
            return ""
        return wait_for(queue, base_key,
                        lambda base_job: _do(base_job, base_key, plan, tracker, dist, queue))

    base = obtain_base(setup, tracker, once=once)  # done first, outside the cell's run
    ids: list[str] = []
    metrics = prune(setup, tracker, base,
                    parent_run_id=plan.sweep_run_id or None, tags=tags,
                    on_run=lambda run_id: (ids.append(run_id), record and record(run_id)))
    if job is not None:
        job.complete(ids[0])
    if dist.is_main:
        return (f"{run_name(cfg):<24} acc1={metrics['acc1']:.4f}  acc5={metrics['acc5']:.4f}  "
                f"compression={metrics['compression']:.3f}  speedup={metrics['speedup']:.2f}")
    return None


def _follow(plan: _Plan, tracker: Follower, dist: Dist) -> SweepSummary:
    """Ranks > 0 under torchrun: do what rank 0 says, item by item, until it says stop."""
    ran = 0
    while text := (dist.broadcast_bytes(None) or b"").decode():
        _do(None, text, plan, tracker, dist, None)
        ran += 1
    return SweepSummary(plan.study, "", "", ran, len(plan.items))


def _spawn(count: int, plan: _Plan, tracking: TrackingConfig, spec: StorageSpec,
           grace_s: int) -> list:
    """``count`` more worker processes on this machine (spawned: a fresh interpreter)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_child, args=(plan, tracking, spec, grace_s))
             for _ in range(count)]
    for p in procs:
        p.start()
    return procs


def _child(plan: _Plan, tracking: TrackingConfig, spec: StorageSpec, grace_s: int) -> None:
    quiet()
    try:
        work(open_queue(spec, plan.study, grace_s), plan, Tracker(tracking))
    except (TrackingUnavailable, TrackingRefused, KeyboardInterrupt) as exc:
        failure = given_up()
        if isinstance(exc, KeyboardInterrupt) and failure is None:
            raise
        print(f"mlbench sweep: {failure or exc}", file=sys.stderr, flush=True)  # one line
        sys.exit(1)


__all__ = ["SweepSummary", "run_sweep", "work"]
