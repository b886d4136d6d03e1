"""Per-epoch training checkpoints in one safetensors file, no pickle anywhere.

A checkpoint holds everything ``engine.fit`` needs to continue as if never stopped: the
model's weights, the optimizer's state, the scheduler's and grad scaler's counters, the
shuffling/augmentation generator and the global torch RNG, the epoch reached and the
per-epoch metrics so far. Tensors are safetensors entries; everything else is JSON in
the file's metadata header. Resuming from epoch k gives the same weights, bit for bit
on the same machine, as training straight through. An iterative schedule checkpoints
between its rounds instead (``capture_round``): weights, masks and random streams.

``Checkpointer`` decides when to write (every epoch once ``every_s`` seconds have passed
since the last write; 0 means every epoch) and hands the file to a ``publish`` callback
(the recipe uploads it as an artifact of the run): the engine stays free of MLflow.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import Tensor, nn

from mlbench.device import Precision
from mlbench.errors import ConfigError

FORMAT = "mlbench.checkpoint/1"
FILENAME = "checkpoint.safetensors"


@dataclass
class TrainState:
    """What a checkpoint holds. ``epoch`` is the last epoch completed (counting from 1)."""

    epoch: int
    tensors: dict[str, Tensor]
    meta: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def capture(
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    precision: Precision,
    generator: torch.Generator,
    history: list[dict[str, float]],
    extra: Mapping[str, Tensor] | None = None,
) -> TrainState:
    """The full training state after ``epoch`` (tensors copied to the CPU).

    ``extra`` are more tensors the training changes as it goes (a gradual schedule's
    masks): saved too, and copied back in place by ``restore``.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors |= {f"extra.{k}": v.detach().cpu().contiguous() for k, v in (extra or {}).items()}
    optim = optimizer.state_dict()
    optim_scalars: dict[str, dict[str, Any]] = {}
    for index, slots in optim["state"].items():
        for key, value in slots.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                optim_scalars.setdefault(str(index), {})[key] = value
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and precision.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(precision.device)
    meta = {
        "format": FORMAT,
        "epoch": epoch,
        "param_groups": optim["param_groups"],
        "optim_scalars": optim_scalars,
        "scheduler": scheduler.state_dict(),
        "scaler": precision.scaler.state_dict(),
        "history": history,
    }
    return TrainState(epoch=epoch, tensors=tensors, meta=meta, history=list(history))


def restore(
    state: TrainState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    precision: Precision,
    generator: torch.Generator,
    extra: Mapping[str, Tensor] | None = None,
) -> None:
    """Put ``state`` back into a freshly built model, optimizer, scheduler and generator
    (and, in place, into the ``extra`` tensors it was captured with)."""
    device = next(model.parameters()).device
    weights = {k[len("model."):]: v for k, v in state.tensors.items() if k.startswith("model.")}
    model.load_state_dict(weights)
    slots: dict[int, dict[str, Any]] = {}
    for key, value in state.tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value.to(device)
    for index, scalars in state.meta["optim_scalars"].items():
        slots.setdefault(int(index), {}).update(scalars)
    optimizer.load_state_dict({"state": slots, "param_groups": state.meta["param_groups"]})
    scheduler.load_state_dict(state.meta["scheduler"])
    if state.meta["scaler"]:
        precision.scaler.load_state_dict(state.meta["scaler"])
    generator.set_state(state.tensors["rng.generator"])
    torch.set_rng_state(state.tensors["rng.torch"])
    for name, tensor in (extra or {}).items():
        with torch.no_grad():
            tensor.copy_(state.tensors[f"extra.{name}"])
    if "rng.cuda" in state.tensors and precision.device.type == "cuda":
        torch.cuda.set_rng_state(state.tensors["rng.cuda"], precision.device)


def capture_round(
    epoch: int,
    rounds: int,
    model: nn.Module,
    masks: Mapping[str, Tensor],
    generator: torch.Generator,
    history: list[dict[str, float]],
) -> TrainState:
    """The state of a schedule after its first ``rounds`` rounds (``epoch`` epochs).

    Between rounds there is no optimizer to keep (each round builds its own): the
    weights, the masks and the random streams are the whole state.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors |= {f"mask.{k}": m.detach().cpu().contiguous() for k, m in masks.items()}
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"format": FORMAT, "epoch": epoch, "rounds": rounds, "history": history}
    return TrainState(epoch=epoch, tensors=tensors, meta=meta, history=list(history))


def restore_round(
    state: TrainState, model: nn.Module, generator: torch.Generator
) -> tuple[int, dict[str, Tensor]]:
    """Put a ``capture_round`` state back; return the rounds done and their masks.

    A ConfigError if ``state`` was written by one-shot fine-tuning, not by a schedule.
    """
    if "rounds" not in state.meta:
        raise ConfigError("the checkpoint was written mid fine-tuning, not between rounds")
    params = dict(model.named_parameters())
    model.load_state_dict({k[len("model."):]: v for k, v in state.tensors.items()
                           if k.startswith("model.")})
    masks = {k[len("mask."):]: v.to(params[k[len("mask."):]].device)
             for k, v in state.tensors.items() if k.startswith("mask.")}
    generator.set_state(state.tensors["rng.generator"])
    torch.set_rng_state(state.tensors["rng.torch"])
    return int(state.meta["rounds"]), masks


def save(state: TrainState, path: str | Path) -> Path:
    """Write ``state`` to ``path`` (one safetensors file, JSON metadata in its header)."""
    path = Path(path)
    save_file(state.tensors, str(path), metadata={"mlbench": json.dumps(state.meta)})
    return path


def load(path: str | Path) -> TrainState:
    """Read a checkpoint written by ``save``; a ConfigError if it is not one or is corrupt."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        meta = json.loads(header["mlbench"])
        tensors = load_file(str(path))
    except (OSError, SafetensorError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable mlbench checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: checkpoint format {meta.get('format')!r}, expected {FORMAT}")
    return TrainState(epoch=int(meta["epoch"]), tensors=tensors, meta=meta,
                      history=list(meta["history"]))


def misfit(state: TrainState, model: nn.Module) -> str | None:
    """Why ``state`` cannot be restored into ``model`` (names or shapes differ), or None."""
    saved = {k[len("model."):]: tuple(v.shape) for k, v in state.tensors.items()
             if k.startswith("model.")}
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name in sorted(saved.keys() | wanted.keys()):
        if saved.get(name) != wanted.get(name):
            return (f"tensor {name}: checkpoint has {saved.get(name, 'none')}, the model "
                    f"{wanted.get(name, 'none')}")
    return None


class Checkpointer:
    """Writes a checkpoint after an epoch when due; holds the state to resume from.

    Args:
        publish: called with the written file and its epoch (e.g. to upload it).
        every_s: minimum seconds between checkpoints; 0 writes one after every epoch,
            a negative value never writes.
        resume: the state to start from, if any.
        extra: tensors beyond the model's that training changes in place (a gradual
            schedule's masks), checkpointed and restored with it.
    """

    def __init__(
        self,
        publish: Callable[[Path, int], None],
        every_s: float = 60.0,
        resume: TrainState | None = None,
        extra: Mapping[str, Tensor] | None = None,
    ) -> None:
        self.publish = publish
        self.every_s = every_s
        self.resume = resume
        self.extra = extra
        self._last = time.monotonic()

    def due(self) -> bool:
        """Has ``every_s`` passed since the last checkpoint (or the start)?"""
        return self.every_s >= 0 and time.monotonic() - self._last >= self.every_s

    def write(self, state: TrainState) -> None:
        """Save ``state`` to a temp file and publish it."""
        with tempfile.TemporaryDirectory(prefix="mlbench-ckpt-") as tmp:
            self.publish(save(state, Path(tmp) / FILENAME), state.epoch)
        self._last = time.monotonic()


__all__ = [
    "FILENAME", "Checkpointer", "TrainState", "capture", "capture_round", "load", "misfit",
    "restore", "restore_round", "save",
]
