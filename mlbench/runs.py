"""One run from the command line, and the one way to obtain a base model.

``obtain_base`` finds the registered base model of a setup's (data, model, seed,
recipe), waits for the worker training it, or trains it: ``prune``, sweep cells and
tuning all obtain their base model here, so every strategy at a seed prunes the very
same weights (the first fairness rule). ``run_train`` and ``run_prune`` are the
``train`` and ``prune`` commands (and MLproject entry points) after their checks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from mlbench._background import Background
from mlbench.config import RunConfig, TrackingConfig
from mlbench.device import pick_device
from mlbench.distributed import from_env
from mlbench.recipe import (
    base_key_hash,
    base_run_name,
    prepare,
    prune,
    registered_name,
    run_name,
    train_base,
)
from mlbench.setup import Setup
from mlbench.tracking import BaseModel, Follower, check_reachable, resolve_uri

if TYPE_CHECKING:  # mlflow loads when a run starts, after the data is read
    from mlbench.tracking import Tracker


OpenTracker = Callable[[TrackingConfig], "Tracker"]  # opens the run's Tracker, given its config


class Once(Protocol):
    """An item done by exactly one worker of many (a work queue's): ``once(key, work)``
    runs ``work`` here if no worker has it, else waits for the one that does; either way
    returns the run id that did it."""

    def __call__(self, key: str, work: Callable[[], str]) -> str: ...


def obtain_base(setup: Setup, tracker: Tracker, *, once: Once | None = None,
                tags: Mapping[str, str] | None = None,
                on_run: Callable[[str], None] | None = None) -> BaseModel:
    """The base model of ``setup``: found in the Model Registry, waited for, or trained.

    Without ``once`` a missing base is trained here; with it, by exactly one of the
    workers that share ``once`` (the others wait). ``tags`` and ``on_run`` go to the
    train run if one is made. Under torchrun rank 0 looks, and all ranks train together.
    """
    name, base_hash = registered_name(setup.cfg), base_key_hash(setup)
    found = tracker.registry.find(name, base_hash)
    if setup.dist.broadcast_flag(found is not None):
        return found or BaseModel(run_id="", name=name, version=None)
    if once is None:
        return train_base(setup, tracker, tags, on_run)
    run_id = once(f"base:{base_hash}",
                  lambda: obtain_base(setup, tracker, tags=tags, on_run=on_run).run_id)
    return tracker.registry.find(name, base_hash) or BaseModel(
        run_id=run_id, name=name, version=tracker.registry.version_of(name, run_id))


def run_train(cfg: RunConfig, tracking: TrackingConfig,
              open_tracker: OpenTracker | None = None) -> BaseModel:
    """Check everything, then train and register the base model (or reuse it).

    ``open_tracker`` opens the Tracker once the data is read (default: in this process;
    the ``train`` command's opens it in its tracking agent)."""
    check_reachable(resolve_uri(tracking.tracking_uri))
    dist = from_env(pick_device(cfg.device))
    opener = open_tracker or in_process()
    setup = prepare(cfg, prune=False, dist=dist)
    tracker = opener(tracking) if dist.is_main else Follower(tracking)
    found = tracker.registry.find(registered_name(cfg), base_key_hash(setup))
    if not dist.broadcast_flag(found is not None):
        return train_base(setup, tracker)
    if tracker.inside_project:  # `mlflow run -e train` opened a run: say what it reused
        with tracker.run("train", base_run_name(cfg), {"mlbench.reused_run_id": found.run_id}):
            tracker.log_params({**cfg.base_key(), "base_run_id": found.run_id})
    return found or BaseModel(run_id="", name=registered_name(cfg), version=None)


def run_prune(cfg: RunConfig, tracking: TrackingConfig,
              open_tracker: OpenTracker | None = None, *,
              again: bool = False) -> dict[str, float]:
    """Check everything, then prune (obtaining the base model inside the prune run).

    ``open_tracker`` opens the Tracker once the data is read (default: in this process,
    MLflow imported on a thread meanwhile; the ``prune`` command's opens it in its
    tracking agent, which imported MLflow in a process of its own). A configuration
    that already FINISHED is not run again (its run's metrics are returned, said in one
    line) unless ``again``."""
    check_reachable(resolve_uri(tracking.tracking_uri))  # fail fast, before loading data
    dist = from_env(pick_device(cfg.device))
    # the store is opened only after prepare() passed, so bad input leaves no store
    opener = open_tracker or in_process()
    setup = prepare(cfg, dist=dist)
    tracker = opener(tracking) if dist.is_main else Follower(tracking)
    done = None if again else _already_done(setup, tracker)
    if done is not None:
        return done
    return prune(setup, tracker, lambda: obtain_base(setup, tracker))


def _already_done(setup: Setup, tracker: Tracker) -> dict[str, float] | None:
    """A FINISHED prune run of this very configuration (its config hash), said in one
    line: its metrics, so that a rerun (after a kill that landed once the run had
    finished, say) never makes a second one (DESIGN.md: the hash finds a finished run
    again). Under ``mlflow run`` (which opened a run already) and under data parallelism
    (every rank must take the same path) the run is made as asked."""
    if os.environ.get("MLFLOW_RUN_ID") or setup.dist.enabled:
        return None
    run_id = tracker.find_finished("prune", setup.cfg.run_hash())
    if run_id is None:
        return None
    print(f"mlbench: prune: {run_name(setup.cfg)} is already done with this configuration: "
          f"run {run_id} (FINISHED); its results follow. Change an option to run again.",
          file=sys.stderr)
    return tracker.metrics_of(run_id)


def in_process() -> OpenTracker:
    """Open an in-process Tracker later: MLflow (seconds) is imported on a thread from
    now, while the data is read and the model built."""
    later = Background(_import_tracker)
    return lambda tracking: later.result()(tracking)


def _import_tracker() -> type[Tracker]:
    """The Tracker class: importing it imports mlflow."""
    from mlbench.tracking import Tracker

    return Tracker


__all__ = ["Once", "OpenTracker", "in_process", "obtain_base", "run_prune", "run_train"]
