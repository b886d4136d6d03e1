"""The tracker of data-parallel ranks other than 0: the same calls, nothing logged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from mlbench.config import TrackingConfig


class _Silent:
    """Any method called on it does nothing and returns None (finds nothing)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("__"):
            raise AttributeError(name)
        return _nothing


def _nothing(*_: Any, **__: Any) -> None:
    return None


class Follower(_Silent):
    """Stands in for the Tracker on ranks > 0 under torchrun: only rank 0 talks to MLflow.

    It is not a Tracker: it holds the config and answers every call with nothing (a
    lookup finds nothing, a log call logs nothing), so a Tracker method it was never
    told about cannot reach MLflow from another rank. What rank 0 finds (a base model,
    a checkpoint, masks) reaches the other ranks by broadcast instead.
    """

    def __init__(self, cfg: TrackingConfig) -> None:
        self.cfg = cfg
        self.inside_project = False
        self.registry = _Silent()
        self.checkpoints = _Silent()

    @contextlib.contextmanager
    def run(self, *_: Any, **__: Any) -> Iterator[str]:
        """A run that is not opened: yields an empty run id."""
        yield ""


__all__ = ["Follower"]
