"""Opening a local sqlite store from many processes at once.

MLflow creates (and migrates) a sqlite store's tables when a process first opens it,
without a lock: two processes opening a fresh store together can see each other's
half-made schema (``no such column: spans.dimension_attributes``). Every mlbench process
opens a sqlite store first under an exclusive file lock beside it (``mlflow.db.lock``),
so one creates the schema and the others then find it whole; and a new store appears
under its name only once whole, so a process killed while making it breaks nothing.
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
    """Make sure the store at ``uri`` exists with its whole schema (once, under the lock).

    A new store is made under another name beside it and renamed into place once whole:
    a process killed while MLflow makes the tables (a second or more) leaves no
    half-made store behind, only a ``.creating`` file the next process starts over.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    from mlflow.tracking._tracking_service.utils import _get_store

    with store_lock(uri):
        if not path.exists():
            creating = path.with_name(path.name + ".creating")
            creating.unlink(missing_ok=True)
            fresh = _get_store(f"sqlite:///{creating}")  # every table, every migration
            fresh.engine.dispose()
            creating.replace(path)
        _get_store(uri)  # checks the schema; cached for this process


__all__ = ["open_store", "store_lock"]
