"""Where a unit of work resumes: the furthest checkpoint of an interrupted run that fits.

The worker that holds a unit of work (the sweep queue gave it out once) continues the
interrupted run of the same key that got furthest: its checkpoint is loaded, its
per-epoch metrics copied into the new run, and the new run tagged
``mlbench.resumed_from``. A checkpoint that cannot be read, or whose tensors do not fit
the model being trained (a changed model definition, say), is set aside with one warning
line and training starts from the beginning; it is never tried again.

Base training and one-shot fine-tuning checkpoint inside ``engine.fit``; each schedule
(``mlbench.schedules``) says what its checkpoints must hold, through
``TrackedCheckpoints``, which the recipe gives it.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from mlbench import checkpoint
from mlbench.distributed import Dist
from mlbench.errors import ConfigError
from mlbench.tracking import CHECKPOINT_DIR, RESUMED_EPOCH, RESUMED_FROM

if TYPE_CHECKING:
    from mlbench.tracking import Tracker


def checkpointer(tracker: Tracker, config_hash: str, model: nn.Module,
                 dist: Dist = Dist(), *,
                 holds: Callable[[checkpoint.TrainState], str | None] = lambda state: None,
                 ) -> checkpoint.Checkpointer:
    """Checkpoints for the active run, resuming from an interrupted run's last one.

    ``holds`` says what a checkpoint lacks for this kind of training (None: nothing);
    one that lacks something is set aside like one that does not fit. Under torchrun,
    rank 0 finds and writes checkpoints and broadcasts the one to resume from.
    """
    from mlbench.tracking import checkpoint_key  # mlflow: when a run needs it

    key = checkpoint_key(config_hash, model.state_dict())
    found = tracker.checkpoints.find(key) if dist.is_main else None
    data = _fetch(tracker, found[0], model, holds) if found is not None else None
    data = dist.broadcast_bytes(data)
    state = None
    if data is not None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / checkpoint.FILENAME).write_bytes(data)
            state = checkpoint.load(Path(tmp) / checkpoint.FILENAME)
        if found is not None:
            tracker.set_tags({RESUMED_FROM: found[0], RESUMED_EPOCH: str(state.epoch)})
            tracker.log_history(state.history)
    every_s = tracker.cfg.checkpoint_every if dist.is_main else -1.0
    return checkpoint.Checkpointer(lambda path, epoch: tracker.checkpoints.log(path, epoch, key),
                                   every_s=every_s, resume=state)


def _fetch(tracker: Tracker, run_id: str, model: nn.Module,
           holds: Callable[[checkpoint.TrainState], str | None]) -> bytes | None:
    """The checkpoint file of ``run_id`` if it reads, fits ``model`` and holds what the
    training needs; else set aside."""
    try:
        path = tracker.download(run_id, f"{CHECKPOINT_DIR}/{checkpoint.FILENAME}")
        state = checkpoint.load(path)
        reason = checkpoint.misfit(state, model) or holds(state)
    except ConfigError as exc:
        reason = str(exc)
    if reason is None:
        return path.read_bytes()
    print(f"mlbench: warning: checkpoint of run {run_id} set aside, starting afresh: {reason}",
          file=sys.stderr, flush=True)
    tracker.checkpoints.set_aside(run_id, reason)
    return None


class TrackedCheckpoints:
    """A schedule's checkpoints as artifacts of the active MLflow run (``Checkpoints``).

    ``open`` gives a ``checkpointer`` keyed by the run's config hash and the model's
    tensor shapes: it resumes from the furthest interrupted run of the same key whose
    checkpoint holds what the schedule needs (``holds``).
    """

    def __init__(self, tracker: Tracker, config_hash: str, dist: Dist = Dist()) -> None:
        self.tracker = tracker
        self.config_hash = config_hash
        self.dist = dist

    def open(self, model: nn.Module, *,
             holds: Callable[[checkpoint.TrainState], str | None] = lambda state: None,
             ) -> checkpoint.Checkpointer:
        """A checkpointer for ``model`` in the active run (see ``checkpointer``)."""
        return checkpointer(self.tracker, self.config_hash, model, self.dist, holds=holds)


__all__ = ["TrackedCheckpoints", "checkpointer"]
