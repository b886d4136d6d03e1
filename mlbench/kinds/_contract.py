"""The strategy-kind contract: what every kind of pruning answers, and its registry.

A *kind* is a way of pruning a network: unstructured masks, N:M semi-structured masks,
channel removal, calibrated post-training pruning of transformer layers. Each is one
class, registered by name, that owns a set of strategy names and answers, for a run:

1. ``check``   before any work (before the base model is trained or loaded): can this
               strategy prune this model to this target under this schedule? One
               ConfigError line naming what is wrong and what is allowed, else nothing.
2. ``prune``   score and remove: return a ``Pruned`` (the pruned network, the masks to
               hold during fine-tuning, a description of a changed architecture).
3. ``sizes``   params, params_nz, compression, MACs, FLOPs and both speedup conventions
               (whole model ``speedup``, and the paper's conv+linear
               ``speedup_conv_linear``) of the pruned network, plus the per-layer table.
4. ``kernels`` / ``timed``  what the measured speed runs on, and the two networks to time.
5. ``save`` / ``load``  the pruned network as files that load without pickle
               (safetensors and JSON), and the network rebuilt from them (``load_pruned``).

Nothing outside ``mlbench/kinds/`` asks which kind a strategy is: callers ask
``kind_of(strategy)`` for the object and call these methods. A new kind is one module in
this package with one ``@register_kind`` class (imported by ``kinds/__init__``).

Example:
    >>> kind = kind_of("global_l1_channel")
    >>> kind.check(setup, schedule)          # before the base model exists
    >>> pruned = kind.prune(setup, batches)  # setup.model holds the base weights
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from mlbench.errors import ConfigError
from mlbench.masks import Masks
from mlbench.registry import Registry
from mlbench.setup import Batch, Setup

Metrics = dict[str, float]
Rows = list[dict[str, object]]


class ScheduleTraits(Protocol):
    """What a kind's ``check`` may ask of a schedule (``mlbench.schedules.Schedule``)."""

    name: str
    prunes_repeatedly: bool  # prunes more than once, each time keeping fewer weights


@dataclass
class Pruned:
    """The result of a kind's ``prune``.

    ``model``: the pruned network (the run's model itself for mask kinds, a new smaller
    dense network for channel removal). ``masks``: bool tensors by parameter name that
    fine-tuning must hold (empty: nothing to hold). ``description``: JSON-ready
    description of a changed architecture (None when the architecture is the model's).
    """

    model: nn.Module
    masks: Masks = field(default_factory=dict)
    description: dict[str, Any] | None = None


class Kind(ABC):
    """One kind of pruning. Subclasses set ``name`` by registering and implement every
    abstract method; instances are stateless (one per registry entry).
    """

    name: ClassVar[str] = ""
    #: Files (artifact names) the kind's ``save`` writes and ``load`` reads.
    files: ClassVar[tuple[str, ...]] = ()
    #: True when ``prune`` can be called again with fewer kept weights, masks only
    #: shrinking (``keep``/``previous``): what iterative and gradual schedules need.
    repeatable: ClassVar[bool] = False

    @abstractmethod
    def strategies(self) -> list[str]:
        """The strategy names this kind runs, in display order."""

    def owns(self, strategy: str) -> bool:
        """Does this kind run ``strategy``?"""
        return strategy in self.strategies()

    def runs(self, schedule: ScheduleTraits) -> bool:
        """Can this kind prune along ``schedule`` at all? (A sweep leaves out the cells
        it cannot run; ``check`` refuses them.) Default: a repeating schedule needs a
        ``repeatable`` kind."""
        return self.repeatable or not schedule.prunes_repeatedly

    @abstractmethod
    def check(self, setup: Setup, schedule: ScheduleTraits) -> None:
        """Raise ConfigError (one line: the bad value and what is allowed) unless
        ``setup.cfg``'s strategy can prune ``setup.model`` to its compression under
        ``schedule``. Runs before any work: ``setup.model`` holds freshly seeded
        (untrained) weights; no run exists yet. Must not change ``setup.model``.

        The base implementation refuses a schedule the kind does not ``runs``; kinds
        call it first.
        """
        if not self.runs(schedule):
            raise ConfigError(
                f"--prune-schedule {schedule.name} prunes repeatedly, which "
                f"{self.name} strategy {setup.cfg.prune.strategy!r} cannot; it runs "
                "oneshot")

    @abstractmethod
    def prune(self, setup: Setup, batches: Sequence[Batch], *, keep: int | None = None,
              previous: Masks | None = None) -> Pruned:
        """Prune ``setup.model`` (which holds the weights to prune) with the run's strategy.

        Args:
            setup: the run; ``setup.cfg.prune`` names the strategy and target.
            batches: the fixed scoring (calibration) batches; never other data.
            keep: repeatable kinds: prunable weights to keep in this step (None: the
                run's target, ``budget(setup)[1]``).
            previous: repeatable kinds: the masks of the previous step; weights they
                pruned stay pruned.

        Returns:
            A ``Pruned``. A mask kind applies its masks to ``setup.model`` (pruned
            weights exactly zero) and returns it; a kind that changes the architecture
            returns the new network and leaves ``setup.model`` untouched. The seeded
            randomness a strategy uses comes from ``setup.cfg.seed``.
        """

    def budget(self, setup: Setup) -> tuple[int, int]:
        """Repeatable kinds: (prunable weights, weights kept at the target)."""
        raise NotImplementedError(f"{self.name} does not prune in steps")

    @abstractmethod
    def sizes(self, setup: Setup, dense: nn.Module, pruned: Pruned) -> tuple[Metrics, Rows]:
        """DESIGN.md's size metrics of ``pruned`` against the ``dense`` base, and the
        per-layer table (name, type, shape, params, nonzero, density, macs, macs_nz).

        Metrics: params, params_nz, compression, macs, macs_nz, flops, flops_nz, speedup,
        macs_conv_linear, macs_conv_linear_nz, speedup_conv_linear.
        """

    def kernels(self, setup: Setup) -> str:
        """What the measured speed runs on (a run param): ``dense`` unless the kind has
        kernels of its own (and then what they are, or why they are not used)."""
        return "dense"

    def timed(self, setup: Setup, dense: nn.Module, pruned: Pruned
              ) -> tuple[nn.Module, nn.Module, Metrics]:
        """The (base, pruned) networks the measured speed times, and metrics to add.
        Default: the dense base against the pruned network as it is."""
        return dense, pruned.model, {}

    @abstractmethod
    def save(self, pruned: Pruned, setup: Setup, folder: Path, meta: Mapping[str, str]
             ) -> list[Path]:
        """Write what, with the fine-tuned ``weights.safetensors`` and ``config.json``,
        rebuilds the pruned network (files named in ``files``); return their paths.
        ``meta`` (base_run_id, strategy) goes into the files' headers."""

    @abstractmethod
    def load(self, folder: Path, config: Mapping[str, Any]) -> nn.Module:
        """Rebuild the fine-tuned pruned network from ``folder`` (``config.json``'s
        ``config``, ``weights.safetensors`` and this kind's ``files``), without pickle."""


KINDS: Registry[Kind] = Registry("kind of pruning")


def register_kind(name: str) -> Callable[[type[Kind]], type[Kind]]:
    """Class decorator: register one instance of a ``Kind`` subclass as ``name``.

    Registering a name twice, or a strategy under two kinds, raises.
    """

    def decorator(cls: type[Kind]) -> type[Kind]:
        cls.name = name
        kind = cls()
        taken = {s for other in KINDS for s in KINDS.get(other).strategies()}
        clash = taken & set(kind.strategies())
        if clash:
            raise ValueError(f"kind {name!r}: strategies {sorted(clash)} belong to another kind")
        KINDS.register(name)(kind)
        return cls

    return decorator


def kind_of(strategy: str) -> Kind:
    """The kind that runs ``strategy``; a ConfigError listing every strategy otherwise."""
    for name in KINDS:
        if KINDS.get(name).owns(strategy):
            return KINDS.get(name)
    raise ConfigError(f"unknown strategy {strategy!r}; choose one of: "
                      f"{', '.join(all_strategies())}")


def all_strategies() -> list[str]:
    """Every strategy of every kind, in registration order."""
    return [s for name in KINDS for s in KINDS.get(name).strategies()]


def to_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    """A model's state as contiguous CPU tensors (for safetensors)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
