"""The tracker of data-parallel ranks other than 0: same calls, nothing logged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlbench.config import TrackingConfig
from mlbench.tracking._tracker import BaseModel, Tracker


class Follower(Tracker):
    """Stands in for the Tracker on ranks > 0 under torchrun: only rank 0 talks to MLflow.

    Every logging call does nothing and every lookup finds nothing; what rank 0 finds
    (a base model, a checkpoint, masks) reaches the other ranks by broadcast instead.
    """

    def __init__(self, cfg: TrackingConfig) -> None:  # no connection, no environment
        self.cfg = cfg
        self.inside_project = False

    @contextlib.contextmanager
    def run(self, stage: str, name: str, tags: Mapping[str, str] | None = None,
            **_: Any) -> Iterator[str]:
        """A run that is not opened: yields an empty run id."""
        yield ""

    def confirm_claim(self) -> None:
        """Rank 0 holds the claim."""

    def flush(self) -> None:
        """Nothing is pending."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Rank 0 logs."""

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, *,
                    wait: bool = True) -> None:
        """Rank 0 logs (the metrics are reduced over ranks, so every rank has them)."""

    def log_datasets(self, splits: Iterable[Any], data_digest: str) -> None:
        pass

    def describe_base(self, name: str, version: str | None, description: str,
                      alias: str | None = None) -> None:
        pass

    def log_pruned(self, model: Any, example: Any) -> None:
        pass

    def log_history(self, history: list[Mapping[str, float]]) -> None:
        """Rank 0 logs."""

    def log_checkpoint(self, path: Path, epoch: int) -> None:
        """Rank 0 writes checkpoints."""

    def find_checkpoint(self, stage: str, config_hash: str) -> tuple[str, int] | None:
        """Rank 0 looks; its checkpoint is broadcast."""
        return None

    def mark_resumed(self, from_run_id: str, epoch: int) -> None:
        """Rank 0 tags."""

    def log_dict(self, data: Any, artifact_file: str) -> None:
        """Rank 0 logs."""

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Rank 0 logs."""

    def finished_hashes(self, stage: str) -> set[str]:
        """Rank 0 looks; its list of cells to do is broadcast."""
        return set()

    def claimable(self, stage: str, config_hash: str) -> bool:
        """Rank 0 decides; its decision is broadcast."""
        return True

    def find_base(self, name: str, base_hash: str) -> BaseModel | None:
        """Rank 0 looks; its decision is broadcast."""
        return None

    def register_base(self, name: str, model: Any, example: Any, base_hash: str) -> str | None:
        """Rank 0 registers."""
        return None
