"""Opening a local sqlite store from many processes at once.

MLflow creates (and migrates) a sqlite store's tables when a process first opens it,
without a lock: two processes opening a fresh store together can see each other's
half-made schema (``no such column: spans.dimension_attributes``). Every mlbench process
opens a sqlite store first under an exclusive file lock beside it (``mlflow.db.lock``),
so one creates the schema and the others then find it whole.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from mlbench.tracking._sqlite_runs import sqlite_path


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold the store's file lock (a no-op for any store other than a local sqlite file)."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    lock = Path(f"{path}.lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(uri: str) -> None:
    """Make sure the store at ``uri`` exists with its whole schema (once, under the lock)."""
    if sqlite_path(uri) is None:
        return
    from mlflow.tracking._tracking_service.utils import _get_store

    with store_lock(uri):
        _get_store(uri)  # creates and migrates the tables; cached for this process


__all__ = ["open_store", "store_lock"]
