"""The schedule contract: when a run prunes and how it fine-tunes, and its registry.

A *schedule* takes the network pruned once at the run's target (what ``pre_acc1``
measures) and returns it fine-tuned: one-shot fine-tunes it as it is; iterative and
gradual start again from the base weights and prune in steps, asking the kind
(``Kind.prune(keep=..., previous=...)``) each time. A schedule owns its rounds, its
checkpoints (through ``Training.checkpoints``, which the recipe gives it: MLflow
artifacts in a prune run, none in validation mode) and its resume. Every schedule spends
the run's ``finetune.epochs`` in all unless it says otherwise, and ends at the target.

A new schedule is one module in this package with one ``@register_schedule`` class
(``schedules/__init__`` imports every module of the package); nothing outside compares
schedule names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import torch
from torch import nn

from mlbench.catalog import SCHEDULE_TRAITS
from mlbench.checkpoint import Checkpointer, TrainState
from mlbench.config import OptimConfig
from mlbench.device import Precision
from mlbench.engine import fit
from mlbench.kinds import Kind, Pruned
from mlbench.masks import Masks
from mlbench.progress import EpochProgress
from mlbench.registry import Registry
from mlbench.rewind import SchedulerFactory
from mlbench.setup import Batch, Setup

EpochHook = Callable[[int, dict[str, float]], None]


class Checkpoints(Protocol):
    """Where a schedule's checkpoints go and come from (the recipe's to give)."""

    def open(self, model: nn.Module, *,
             holds: Callable[[TrainState], str | None] = ...) -> Checkpointer | None:
        """A checkpointer for ``model`` resuming from an interrupted run's last checkpoint
        (one for which ``holds`` names nothing missing), or None: no checkpoints."""


class NoCheckpoints:
    """Checkpoints switched off (validation mode: a trial is short and never resumed)."""

    def open(self, model: nn.Module, *,
             holds: Callable[[TrainState], str | None] = lambda state: None,
             ) -> Checkpointer | None:
        return None


@dataclass
class Training:
    """What a schedule works with: the run, its kind, the base weights, and fine-tuning.

    ``on_epoch`` hears every fine-tuning epoch's metrics (logging, a trial's report; it
    may raise to stop). ``dense`` holds the base model's weights.
    """

    setup: Setup
    kind: Kind
    dense: nn.Module
    batches: Sequence[Batch]
    precision: Precision
    checkpoints: Checkpoints = field(default_factory=NoCheckpoints)
    on_epoch: EpochHook = lambda epoch, metrics: None
    progress: EpochProgress = field(
        default_factory=lambda: EpochProgress("fine-tune", 0, enabled=False))
    #: ``--rewind weights``: the base training's weights at the rewind epoch, which each
    #: round of an iterative schedule goes back to (None: the dense base's, ``dense``)
    rewind_to: Mapping[str, torch.Tensor] | None = None

    def fit(self, model: nn.Module, recipe: OptimConfig, epochs: range, masks: Masks | None,
            *, generator: torch.Generator, checkpoint: Checkpointer | None = None,
            after: EpochHook = lambda epoch, metrics: None,
            lr_schedule: SchedulerFactory | None = None) -> dict[str, float]:
        """Fine-tune ``model`` over ``epochs`` holding ``masks``; ``after`` follows
        ``on_epoch`` after each epoch; ``lr_schedule`` replaces the recipe's schedule (a
        replayed one, ``mlbench.rewind``). Returns the last epoch's metrics."""
        setup = self.setup

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            self.on_epoch(epoch, metrics)
            after(epoch, metrics)

        return fit(model, setup.splits.train, setup.splits.val, recipe, generator=generator,
                   precision=self.precision, masks=masks, augment=setup.cfg.data.augment,
                   on_epoch=self.progress.chain(on_epoch), epochs=self.progress.wrap(epochs),
                   checkpoint=checkpoint, dist=setup.dist, compile=setup.cfg.compile,
                   lr_schedule=lr_schedule)


class Schedule(ABC):
    """One pruning schedule. Subclasses are registered by ``@register_schedule``."""

    name: ClassVar[str] = ""
    #: Prunes more than once, each time keeping fewer weights (masks only shrink):
    #: the kind must be ``repeatable`` (its ``check`` refuses otherwise), and pruning at
    #: initialization (which prunes once, before training) cannot follow it.
    prunes_repeatedly: ClassVar[bool] = False
    # Declared in the decorator, ``@register_schedule(name, **traits)``, where the config
    # and the report read them without importing torch (``catalog.SCHEDULE_TRAITS``):
    #: Splits the fine-tuning epochs over ``--prune-rounds`` rounds, at least one epoch
    #: each (the config refuses more rounds than epochs).
    rounds: ClassVar[bool] = SCHEDULE_TRAITS["rounds"]
    #: Run names and the report's labels name the schedule; only the paper's protocol,
    #: one-shot, goes unnamed (``layer_grad-c8-s0`` and ``layer_grad-iterative-c8-s0``).
    named: ClassVar[bool] = SCHEDULE_TRAITS["named"]
    #: Each round starts from what ``--rewind`` names (``mlbench.rewind``); for
    #: ``weights`` the base run keeps its weights of ``--rewind-epoch`` (in its key).
    rewinds: ClassVar[bool] = SCHEDULE_TRAITS["rewinds"]

    @property
    def mark(self) -> str:
        """What run names and report labels add for this schedule: its name, or ""."""
        return self.name if self.named else ""

    def check(self, setup: Setup) -> None:
        """Raise ConfigError (one line: the bad value, what is allowed) for a config this
        schedule cannot run; called by ``recipe.prepare`` before any work, before the
        kind's ``check``. Default: everything is allowed."""
        return None

    @abstractmethod
    def run(self, training: Training, pruned: Pruned) -> Pruned:
        """Fine-tune along the schedule, starting from ``pruned`` (the base pruned once at
        the target, held in ``training.setup.model`` or ``pruned.model``); return the
        fine-tuned network and its final masks. Runs with the global RNG seeded by the
        caller, resumes from the last checkpoint that fits, and checkpoints as it goes."""


SCHEDULES: Registry[Schedule] = Registry("pruning schedule")


def register_schedule(name: str, **traits: bool) -> Callable[[type[Schedule]], type[Schedule]]:
    """Class decorator: register one instance of a ``Schedule`` subclass as ``name``,
    with its ``traits`` (``catalog.SCHEDULE_TRAITS``: ``named``, ``rounds``, ``rewinds``)
    as literals, which ``catalog.schedule_traits`` reads from the source without
    importing it."""
    unknown = sorted(set(traits) - set(SCHEDULE_TRAITS))
    if unknown:
        raise TypeError(f"register_schedule({name!r}): unknown trait(s) {', '.join(unknown)}; "
                        f"allowed: {', '.join(SCHEDULE_TRAITS)}")

    def decorator(cls: type[Schedule]) -> type[Schedule]:
        cls.name = name
        for trait, value in traits.items():
            setattr(cls, trait, value)
        SCHEDULES.register(name)(cls())
        return cls

    return decorator


def schedule_of(name: str) -> Schedule:
    """The registered schedule ``name``; a ConfigError listing the schedules otherwise."""
    return SCHEDULES.get(name)
