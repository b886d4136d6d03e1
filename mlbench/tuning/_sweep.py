"""A sweep's workers: take items from the sweep's queue until none is left, anywhere.

``run_sweep`` checks all input, opens the sweep's study (``mlbench.sweep.study_name``) on
the storage, enqueues what is not done, and works: in this process, plus ``workers - 1``
spawned ones. Every worker, here or on another machine, loops: take a waiting item
(cells whose base model is done before the others), do it as one MLflow run, report it.
A cell whose base model is not done yet waits for the worker training it, or takes it
if it is waiting (a dead worker's, re-queued). When nothing is waiting, a worker waits
while other live workers hold items (a dead one's item comes back after the grace
period) and stops when every item is done or given up; then the sweep either ends its
``sweep`` run FINISHED or names, in one line, what it could not finish.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass

import optuna

from mlbench.base import registered_name, train_base
from mlbench.config import RunConfig, TrackingConfig
from mlbench.device import pick_device
from mlbench.distributed import Dist, from_env
from mlbench.errors import (  # issue 20: Tracking*
    ConfigError,
    SweepIncomplete,
    TrackingRefused,
    TrackingUnavailable,
)
from mlbench.masks import keep_count
from mlbench.pipeline import base_key_hash, prepare, prune, run_name
from mlbench.progress import CellProgress
from mlbench.sweep import Grid, keys, study_name, sweep_hash, sweep_name
from mlbench.tracking import (
    CONFIG_HASH,
    STORAGE,
    STUDY,
    TRIAL_NUMBER,
    BaseModel,
    Follower,
    Tracker,
    check_reachable,
    quiet,
    resolve_uri,
)
from mlbench.tuning._queue import MAX_RETRY, Job, WorkQueue
from mlbench.tuning._storage import StorageSpec, open_storage, parse_storage

DEFAULT_GRACE_S = int(os.environ.get("MLBENCH_GRACE", "60"))  # a dead worker's item waits this
SWEEP = "sweep"  # the queue item that opens the sweep's MLflow run (its parent run)
_MAX_POLL_S = 5.0


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

    items: dict[str, RunConfig]
    study: str
    cfg: RunConfig
    grid: Grid
    storage: str
    sweep_run_id: str = ""


def open_queue(spec: StorageSpec, name: str, grace_s: int = DEFAULT_GRACE_S) -> WorkQueue:
    """The sweep's queue on ``spec``: heartbeats every grace/4 s, dead after ``grace_s``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our lines, not Optuna's
    storage = open_storage(spec, heartbeat_s=max(1, grace_s // 4), grace_s=grace_s,
                           max_retry=MAX_RETRY)
    return WorkQueue.open(storage, name, [])


def run_sweep(cfg: RunConfig, grid: Grid, tracking: TrackingConfig, *, workers: int = 1,
              storage: str | None = None, grace_s: int = DEFAULT_GRACE_S) -> SweepSummary:
    """Run every unfinished item of the sweep of ``grid`` until all are done anywhere.

    All input is checked first (grid, compressions against the model, data, tracking
    server, storage). Raises SweepIncomplete, naming them, when items were given up after
    their retries; running the same command again retries them.
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
    setup = prepare(dataclasses.replace(cfg, prune=dataclasses.replace(
        cfg.prune, strategy=grid.strategies[0], compression=1.0)), dist=dist)
    for c in grid.compressions:
        keep_count(setup.model, setup.prunable, c)
    items, name = {SWEEP: cfg, **keys(cfg, grid)}, study_name(cfg, grid)
    plan = _Plan(items, name, cfg, grid, spec.display)
    if not dist.is_main:
        return _follow(plan, Follower(tracking), dist)
    queue = open_queue(spec, name, grace_s)
    queue.enqueue(items)
    tracker = Tracker(tracking)
    plan.sweep_run_id = _wait_for(queue, SWEEP, plan, tracker, dist)
    children = _spawn(workers - 1, plan, tracking, spec, grace_s)
    try:
        ran = work(queue, plan, tracker, dist)
    except (TrackingUnavailable, TrackingRefused):  # issue 20: no worker here can track
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
            f"{len(missing)} of {len(items)} items not done ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(missing.items()))
            + "); run the same command again to retry them")
    tracker.log_to(plan.sweep_run_id, metrics={"cells_done": len(grid.cells(cfg))})
    tracker.end_run(plan.sweep_run_id)
    return SweepSummary(name, spec.display, plan.sweep_run_id, ran, len(items))


def _open_sweep_run(tracker: Tracker, plan: _Plan) -> str:
    """The sweep's MLflow run (the parent of its cells' runs), with the grid as params."""
    cfg, grid = plan.cfg, plan.grid
    tags = {CONFIG_HASH: sweep_hash(cfg, grid), STUDY: plan.study, STORAGE: plan.storage}
    if tracker.inside_project:  # `mlflow run -e sweep` opened the run: it is the sweep's
        run_id = os.environ["MLFLOW_RUN_ID"]
        tracker.tag_run(run_id, {**tags, "mlbench.stage": "sweep",
                                 "mlflow.runName": sweep_name(cfg)})
    else:
        run_id = tracker.create_run("sweep", sweep_name(cfg), tags)
    params = {
        **{k: v for k, v in cfg.flat().items()
           if k not in ("strategy", "compression", "prune_schedule")},
        "strategies": ",".join(grid.strategies),
        "prune_schedules": ",".join(grid.prune_schedules),
        "compressions": ",".join(f"{c:g}" for c in grid.compressions),
        "seeds": ",".join(map(str, grid.seeds)),
        "cells": len(grid.cells(cfg)),
        "study": plan.study,
        "storage": plan.storage,
    }
    tracker.log_to(run_id, params=params)
    return run_id


def work(queue: WorkQueue, plan: _Plan, tracker: Tracker, dist: Dist = Dist()) -> int:
    """Take and do items until none is waiting or held by a live worker; return how many
    this worker did. An item that fails is reported in one line and re-queued."""
    ran, wait, said_waiting = 0, 0.5, False
    progress = CellProgress(sum(1 for k in plan.items if k.startswith("cell:")))
    while True:
        state = queue.progress()
        bases = {k for k in state.done if k.startswith("base:")}
        job = queue.take(first=lambda k, done=bases: not k.startswith("cell:")
                         or _base_of(k) in done)
        if job is None:
            if not (state.running or state.waiting):
                break
            if not said_waiting and state.running:  # issue 20: say why nothing happens
                print(f"mlbench: waiting for {', '.join(sorted(state.running))}, held by "
                      "other workers (a dead worker's item comes back after the grace "
                      "period)", file=sys.stderr, flush=True)
                said_waiting = True
            time.sleep(wait)  # poll: live workers hold the rest; dead ones' come back
            wait = min(2 * wait, _MAX_POLL_S)
            continue
        wait, said_waiting = 0.5, False
        try:
            with job:
                base = None
                if job.key.startswith("cell:"):
                    base_cfg = plan.items[_base_of(job.key)]
                    base = _base_model(tracker, base_cfg,
                                       _wait_for(queue, _base_of(job.key), plan, tracker, dist))
                line = _do(job, job.key, plan, tracker, dist, base)
            if line is not None:
                cells = [k for k in queue.progress().done if k.startswith("cell:")]
                progress.done = max(len(cells) - 1, progress.done)  # all workers' cells
                progress.cell(line)
            ran += 1
        except (TrackingUnavailable, TrackingRefused):  # issue 20: no cell can be tracked
            raise
        except Exception as exc:  # noqa: BLE001 - one failing item must not stop the sweep
            if dist.enabled:
                raise
            print(f"mlbench: {job.key} failed ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}); re-queued while retries "
                  f"are left", file=sys.stderr, flush=True)
    if dist.enabled:
        dist.broadcast_bytes(b"")  # the other ranks stop
    return ran


def _base_of(key: str) -> str:
    return "base:" + key.rsplit(":", 1)[1]


def _wait_for(queue: WorkQueue, key: str, plan: _Plan, tracker: Tracker, dist: Dist) -> str:
    """The run id of item ``key`` (the sweep run, a base model): done, or done here if it is
    waiting, or waited for while a live worker does it (a dead worker's comes back as
    waiting after the grace period)."""
    wait = 0.5
    while True:
        progress = queue.progress()
        if key in progress.done:
            return progress.done[key]
        if key in progress.lost:
            raise RuntimeError(f"{key} failed: {progress.lost[key]}")
        job = queue.take(only=key)
        if job is not None:
            with job:
                _do(job, key, plan, tracker, dist, None)
            continue
        time.sleep(wait)  # poll while a live worker does it
        wait = min(2 * wait, _MAX_POLL_S)


def _base_model(tracker: Tracker, cfg: RunConfig, run_id: str) -> BaseModel:
    """The base model that ``run_id`` trained or found, with its registered version."""
    return BaseModel(run_id=run_id, name=registered_name(cfg),
                     version=tracker.registry.version_of(registered_name(cfg), run_id))


def _do(job: Job | None, key: str, plan: _Plan, tracker: Tracker, dist: Dist,
        base: BaseModel | None) -> str | None:
    """Do one item on every rank (rank 0 holds ``job`` and tells the others ``key``); a
    finished cell returns its line for the progress."""
    if dist.enabled and dist.is_main:
        dist.broadcast_bytes(key.encode())
    cfg = plan.items[key]
    if key == SWEEP:
        if job is not None:
            job.complete(_open_sweep_run(tracker, plan))
        return None
    if job is not None and job.previous_run_id:
        tracker.fail_if_running(job.previous_run_id)  # its worker died: not left RUNNING
    tags = {STUDY: plan.study, TRIAL_NUMBER: str(job.number) if job else ""}
    record = job.set_run_id if job is not None else None
    if key.startswith("base:"):
        setup = prepare(cfg, prune=False, dist=dist)
        found = tracker.registry.find(registered_name(cfg), base_key_hash(setup))
        if dist.broadcast_flag(found is not None):
            made = found or BaseModel("", registered_name(cfg), None)
        else:
            made = train_base(setup, tracker, tags, on_run=record)
        if job is not None:
            job.complete(made.run_id)
        return None
    ids: list[str] = []
    metrics = prune(prepare(cfg, dist=dist), tracker,
                    base or BaseModel("", registered_name(cfg), None),
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
    while key := (dist.broadcast_bytes(None) or b"").decode():
        _do(None, key, plan, tracker, dist, None)
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
    except (TrackingUnavailable, TrackingRefused, KeyboardInterrupt) as exc:  # issue 20
        from mlbench.tracking import given_up

        failure = given_up()
        if isinstance(exc, KeyboardInterrupt) and failure is None:
            raise
        print(f"mlbench sweep: {failure or exc}", file=sys.stderr, flush=True)  # one line
        sys.exit(1)


__all__ = ["DEFAULT_GRACE_S", "SweepSummary", "open_queue", "run_sweep", "work"]
