"""Training checkpoints as artifacts of their run, found again by a key of what they fit.

A checkpoint's key is the run's config hash together with the names and shapes of the
model's tensors, so a changed model definition never finds an old checkpoint. Which
worker continues an interrupted run is the sweep queue's decision: whoever holds the
cell resumes the furthest checkpoint of its key, and the interrupted run is marked FAILED.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from mlbench.tracking._records import checkpoint_key
from mlbench.tracking._sender import Link, Sender
from mlbench.tracking._tags import CHECKPOINT_DIR, CHECKPOINT_EPOCH, CHECKPOINT_KEY, SET_ASIDE


class Checkpoints:
    """Writes checkpoints of the active run and finds the one to resume from."""

    def __init__(self, client: MlflowClient, link: Link, sender: Sender) -> None:
        self.client = client
        self.link = link
        self.sender = sender

    def log(self, path: Path, epoch: int, key: str) -> None:
        """Upload a training checkpoint (replacing the last one) and tag its epoch and key.

        Returns once the file is copied into the outbox: the background sender uploads
        it, then tags it, so the training thread never waits on the server; a newer
        checkpoint replaces one still waiting.
        """
        run_id = mlflow.active_run().info.run_id
        self.sender.send_file(run_id, path, CHECKPOINT_DIR, slot=CHECKPOINT_DIR,
                              tags={CHECKPOINT_EPOCH: str(epoch), CHECKPOINT_KEY: key})

    def find(self, key: str) -> tuple[str, int] | None:
        """The unfinished run with a checkpoint of ``key`` that got furthest, and its epoch.

        The caller holds the unit of work (the queue gave it), so any other run of this
        key that is still RUNNING belongs to a dead worker: it is marked FAILED here.
        """
        experiments = [e.experiment_id for e in self.link.call(self.client.search_experiments)]
        runs = self.link.call(
            self.client.search_runs, experiments,
            f"tags.`{CHECKPOINT_KEY}` = '{key}' and attributes.status != 'FINISHED'")
        active = mlflow.active_run()
        candidates = [r for r in runs if SET_ASIDE not in r.data.tags
                      and (active is None or r.info.run_id != active.info.run_id)]
        for run in candidates:
            if run.info.status == "RUNNING":
                self.link.call(self.client.set_terminated, run.info.run_id, status="FAILED")
        best = max(candidates,
                   key=lambda r: (int(r.data.tags[CHECKPOINT_EPOCH]), r.info.start_time),
                   default=None)
        return None if best is None else (best.info.run_id, int(best.data.tags[CHECKPOINT_EPOCH]))

    def say_resumed(self, run_id: str, epoch: int, rounds: int | None = None) -> None:
        """One line: the active run continues ``run_id``'s checkpoint (a resume, not a
        restart), from ``epoch`` (after ``rounds`` rounds of a schedule)."""
        active = mlflow.active_run()
        name = self.link.call(self.client.get_run, active.info.run_id).info.run_name \
            if active is not None else "the run"
        after = f"after round {rounds} (epoch {epoch})" if rounds is not None else \
            f"after epoch {epoch}"
        print(f"mlbench: {name} resumes from the checkpoint of run {run_id}, {after}",
              file=sys.stderr, flush=True)

    def set_aside(self, run_id: str, reason: str) -> None:
        """Never resume from ``run_id``'s checkpoint again (tagged with ``reason``)."""
        self.link.call(self.client.set_tag, run_id, SET_ASIDE, reason[:500])


__all__ = ["Checkpoints", "checkpoint_key"]
