"""A sweep's queue on a storage: heartbeats, a grace period for dead workers."""

from __future__ import annotations

import os

import optuna

from mlbench.tuning._queue import MAX_RETRY, WorkQueue
from mlbench.tuning._storage import StorageSpec, open_storage

DEFAULT_GRACE_S = int(os.environ.get("MLBENCH_GRACE", "60"))  # a dead worker's item waits this


def open_queue(spec: StorageSpec, name: str, grace_s: int = DEFAULT_GRACE_S) -> WorkQueue:
    """The queue ``name`` on ``spec``: heartbeats every grace/4 s, dead after ``grace_s``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our lines, not Optuna's
    storage = open_storage(spec, heartbeat_s=max(1, grace_s // 4), grace_s=grace_s,
                           max_retry=MAX_RETRY)
    return WorkQueue.open(storage, name, [])


__all__ = ["DEFAULT_GRACE_S", "open_queue"]
