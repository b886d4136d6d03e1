"""Rewinding as published (issue 19): what an iterative schedule's round starts from.

- ``weights`` (Frankle et al. 2020, "Linear Mode Connectivity and the Lottery Ticket
  Hypothesis"): the surviving weights go back to their values at epoch k of the base
  model's training (k = ``--rewind-epoch``; k = 0 is the seeded initialization, the
  original lottery ticket), the masks are kept, and the round retrains with the base
  training's learning-rate schedule replayed from epoch k.
- ``lr`` (Renda et al. 2020, "Comparing Rewinding and Fine-tuning in Neural Network
  Pruning"): the weights stay as trained; the round retrains with the base training's
  recipe (optimizer, peak learning rate, schedule) replayed from epoch k.
- ``finetune``: what mlbench did before (and still the default, so numbers stay): the
  weights stay, each round restarts the fine-tuning recipe's own schedule.
- ``dense_weights``: each round resets the surviving weights to the final dense base
  weights, then restarts the fine-tuning schedule.

How it differs from the papers: a round retrains for its share of the run's fine-tuning
epochs (the fairness budget), not for the T - k epochs of the papers; with
``--epochs`` = base epochs - k and one round per pruning step it is their protocol. The
replayed schedule is the base's lr(k + t) for the round's t epochs; a round longer than
T - k continues at the schedule's end value. The optimizer starts fresh at each rewind
(as open_lth does); its state at epoch k is saved beside the weights all the same.

Snapshots: base training logs the weights and the optimizer state after epoch k as
``base_model/rewind-epoch-<k>.safetensors`` when a run needs them (``--rewind weights``
with k > 0; k is then part of the base model's reuse key, so bases with different k
are distinct). Epoch 0 needs no file: it is the seeded initialization, rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from mlbench.catalog import schedule_trait
from mlbench.config import OptimConfig, RunConfig
from mlbench.errors import ConfigError
from mlbench.optim import lr_factor

if TYPE_CHECKING:
    from mlbench.setup import Setup
    from mlbench.tracking import BaseModel, Tracker

SnapshotHook = Callable[[int, nn.Module, torch.optim.Optimizer], None]
SchedulerFactory = Callable[[torch.optim.Optimizer, int], LRScheduler]
REPLAYS = ("weights", "lr")  # rewinds that replay the base schedule from epoch k


def snapshot_name(epoch: int) -> str:
    """The artifact path of the base run's snapshot after ``epoch``."""
    return f"base_model/rewind-epoch-{epoch}.safetensors"


def snapshot_epoch(cfg: RunConfig) -> int | None:
    """The epoch whose weights base training must save for ``cfg`` (None: none needed)."""
    p = cfg.prune
    if schedule_trait(p.prune_schedule, "rewinds") and p.rewind == "weights" \
            and p.rewind_epoch > 0:
        return p.rewind_epoch
    return None


def state_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """``model.<name>`` for the state dict and ``optim.<index>.<key>`` for the optimizer's
    per-parameter tensors (momentum buffers, Adam moments), on the CPU."""
    out = {f"model.{k}": v.detach().cpu().contiguous().clone()
           for k, v in model.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                out[f"optim.{index}.{key}"] = value.detach().cpu().contiguous().clone()
    return out


def snapshot_hook(cfg: RunConfig, tracker: Tracker, is_main: bool = True) -> SnapshotHook | None:
    """What base training calls after each epoch: logs the snapshot at the rewind epoch."""
    epoch_k = snapshot_epoch(cfg)
    if epoch_k is None or not is_main:
        return None

    def hook(epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if epoch != epoch_k:
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(snapshot_name(epoch)).name
            save_file(state_tensors(model, optimizer), str(path), {"epoch": str(epoch)})
            tracker.log_file(path, str(Path(snapshot_name(epoch)).parent))

    return hook


def initial_state(setup: Setup) -> dict[str, Tensor]:
    """The seeded initialization base training starts from, rebuilt bit for bit."""
    from mlbench.at_init import initial_model

    return {k: v.detach().clone() for k, v in initial_model(setup).state_dict().items()}


def rewind_state(setup: Setup, tracker: Tracker, base: BaseModel) -> dict[str, Tensor] | None:
    """The weights ``--rewind weights`` goes back to (None for the other rewinds)."""
    cfg = setup.cfg
    if not schedule_trait(cfg.prune.prune_schedule, "rewinds") or cfg.prune.rewind != "weights":
        return None
    if cfg.prune.rewind_epoch == 0:
        return initial_state(setup)
    try:
        path = tracker.download(base.run_id, snapshot_name(cfg.prune.rewind_epoch), cache=True)
    except ConfigError:
        raise ConfigError(
            f"base run {base.run_id} has no weights of epoch {cfg.prune.rewind_epoch} to "
            "rewind to (it was trained without --rewind weights at that epoch, or resumed "
            "past it)") from None
    tensors = load_file(str(path))
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def replay_recipe(cfg: RunConfig, round_recipe: OptimConfig) -> OptimConfig:
    """The recipe of a round that replays the base schedule: the base's optimizer, peak
    learning rate and schedule, the round's epochs and batch size; else ``round_recipe``."""
    if cfg.prune.rewind not in REPLAYS:
        return round_recipe
    return dataclasses.replace(cfg.base, epochs=round_recipe.epochs,
                               batch_size=round_recipe.batch_size)


def replay_scheduler(cfg: RunConfig) -> SchedulerFactory | None:
    """A scheduler whose step s has the base schedule's factor at step s + k epochs."""
    if cfg.prune.rewind not in REPLAYS:
        return None
    base, k = cfg.base, cfg.prune.rewind_epoch

    def factory(optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> LRScheduler:
        steps = max(steps_per_epoch, 1)
        return LambdaLR(optimizer, lambda step: lr_factor(base, step + k * steps, steps))

    return factory


__all__ = [
    "REPLAYS",
    "initial_state",
    "replay_recipe",
    "replay_scheduler",
    "rewind_state",
    "snapshot_epoch",
    "snapshot_hook",
    "snapshot_name",
    "state_tensors",
]
