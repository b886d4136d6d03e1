"""Where a unit of work resumes: the furthest checkpoint of an interrupted run that fits.

The worker that holds a unit of work (the sweep queue gave it out once) continues the
interrupted run of the same key that got furthest: its checkpoint is loaded, its
per-epoch metrics copied into the new run, and the new run tagged
``mlbench.resumed_from``. A checkpoint that cannot be read, or whose tensors do not fit
the model being trained (a changed model definition, say), is set aside with one warning
line and training starts from the beginning; it is never tried again.

One-shot fine-tuning checkpoints inside ``engine.fit`` (``checkpointer``), and so does a
gradual schedule's one fine-tuning, with its masks (``gradual_checkpointer``); an
iterative schedule checkpoints between its rounds (``Rounds``), and resumes after the
last round it finished.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from mlbench import checkpoint
from mlbench.distributed import Dist
from mlbench.errors import ConfigError
from mlbench.masks import Masks
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
            tracker.checkpoints.say_resumed(found[0], state.epoch,  # issue 20: one line
                                            state.meta.get("rounds"))
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


def gradual_checkpointer(tracker: Tracker, config_hash: str, model: nn.Module,
                         masks: Masks, dist: Dist = Dist()) -> checkpoint.Checkpointer:
    """Checkpoints of a gradual schedule's one fine-tuning: ``checkpointer``'s, with the
    masks (which the schedule changes in place every epoch) saved and restored too."""
    extra = {f"mask.{name}": mask for name, mask in masks.items()}

    def holds(state: checkpoint.TrainState) -> str | None:
        return None if all(f"extra.{k}" in state.tensors for k in extra) else "no masks"

    ck = checkpointer(tracker, config_hash, model, dist, holds=holds)
    ck.extra = extra
    return ck


def round_checkpointer(tracker: Tracker, config_hash: str, model: nn.Module,
                       dist: Dist = Dist()) -> checkpoint.Checkpointer:
    """``checkpointer``'s, resuming only from a checkpoint written between rounds."""
    return checkpointer(tracker, config_hash, model, dist, holds=lambda state: (
        None if "rounds" in state.meta else "written mid fine-tuning, not between rounds"))


class Rounds:
    """Checkpoints of an iterative schedule, one after each round, through ``ck``
    (a ``round_checkpointer``).

    ``generator`` is the fine-tuning rounds' shared shuffling stream; ``history`` holds
    the per-epoch metrics so far (a resumed run's start with the interrupted run's).
    """

    def __init__(self, ck: checkpoint.Checkpointer, generator: torch.Generator) -> None:
        self.ck = ck
        self.generator = generator
        self.history: list[dict[str, float]] = list(ck.resume.history) if ck.resume else []

    def resume(self, model: nn.Module) -> tuple[int, Masks] | None:
        """Load the last finished round into ``model``: (rounds done, masks), or None."""
        if self.ck.resume is None:
            return None
        return checkpoint.restore_round(self.ck.resume, model, self.generator)

    def epoch_done(self, metrics: dict[str, float]) -> None:
        """Record one fine-tuning epoch's metrics (in order, across rounds)."""
        self.history.append(dict(metrics))

    def round_done(self, rounds: int, epoch: int, model: nn.Module, masks: Masks) -> None:
        """Checkpoint after ``rounds`` rounds (``epoch`` epochs), unless switched off."""
        if self.ck.every_s >= 0:
            self.ck.write(checkpoint.capture_round(epoch, rounds, model, masks,
                                                   self.generator, self.history))


__all__ = ["Rounds", "checkpointer", "gradual_checkpointer", "round_checkpointer"]
