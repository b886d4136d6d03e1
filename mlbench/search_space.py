"""The fine-tuning search space of a tuning study: plain, validated, hashable.

A preset's ``search_space`` key maps fine-tuning option names (the fields of
``OptimConfig``: ``lr``, ``weight_decay``, ``momentum``, ``schedule``, ``epochs``,
``batch_size``, ...) to either a range or a list of choices::

    search_space:
      lr: {low: 0.001, high: 0.3, log: true}   # a float range, sampled on a log scale
      epochs: {low: 1, high: 5}                # an int range: 5 is the epochs cap
      batch_size: [32, 64, 128]                # choices

Every value is checked against the option's own bounds (``lr`` > 0, ``momentum`` < 1,
...). The same space, and so the same hash, applies to every strategy. This module knows
nothing of Optuna: ``mlbench.tuning`` turns a space into distributions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlbench.config import FINETUNE_DEFAULTS, OptimConfig, check, config_hash
from mlbench.errors import ConfigError

_FIELDS = {f.name: f for f in dataclasses.fields(OptimConfig)}
_RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class ParamSpace:
    """One searched option: a numeric range (``low``..``high``) or a list of ``choices``."""

    name: str  # an OptimConfig field
    kind: str  # "int", "float" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False  # sample uniformly in log space
    step: float | None = None  # grid step of a range (None: continuous / 1 for ints)
    choices: tuple[Any, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The preset spelling of this parameter (what is hashed and logged)."""
        if self.kind == "choice":
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    """The searched fine-tuning options, in a fixed (sorted) order."""

    params: tuple[ParamSpace, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{name: range or choices}``: what is logged, and what the hash covers."""
        return {p.name: p.as_dict() for p in self.params}

    def hash(self) -> str:
        """A short stable hash: equal hashes mean every strategy searched the same space."""
        return config_hash(self.as_dict())

    def epochs_cap(self, finetune: OptimConfig) -> int:
        """The most fine-tuning epochs one trial may run."""
        for p in self.params:
            if p.name == "epochs":
                return int(p.high if p.kind != "choice" else max(p.choices))
        return finetune.epochs

    def names(self) -> list[str]:
        """The searched option names."""
        return [p.name for p in self.params]


def default_search_space(finetune: OptimConfig = FINETUNE_DEFAULTS) -> SearchSpace:
    """The space used when a preset names none: the usual SGD knobs around the recipe.

    The epochs cap is the recipe's own ``epochs``, so a tuned run never fine-tunes
    longer than the untuned runs it is compared with.
    """
    return parse_search_space(
        {
            "lr": {"low": 1e-3, "high": 0.3, "log": True},
            "weight_decay": {"low": 1e-6, "high": 1e-3, "log": True},
            "momentum": {"low": 0.5, "high": 0.99},
            "schedule": ["constant", "cosine"],
            "epochs": {"low": 1, "high": max(1, finetune.epochs)},
            "batch_size": [32, 64, 128],
        }
    )


def parse_search_space(raw: Any, where: str = "search_space") -> SearchSpace:
    """Validate a preset's ``search_space`` value; raise ConfigError naming the bad part.

    Example:
        >>> parse_search_space({"lr": {"low": 0.01, "high": 0.1, "log": True}}).names()
        ['lr']
    """
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            f"{where} must map fine-tuning options to a range {{low, high}} or a list of "
            f"choices, and name at least one; got {raw!r}"
        )
    params = [_parse_param(str(name), value, where) for name, value in raw.items()]
    return SearchSpace(tuple(sorted(params, key=lambda p: p.name)))


def _parse_param(name: str, value: Any, where: str) -> ParamSpace:
    if name not in _FIELDS:
        raise ConfigError(
            f"{where}: unknown option {name!r}; searchable: {', '.join(sorted(_FIELDS))}"
        )
    kind = _FIELDS[name].type
    if isinstance(value, list | tuple):
        if not value:
            raise ConfigError(f"{where}.{name}: the list of choices is empty")
        for choice in value:
            _check_option(name, choice, where)
        return ParamSpace(name, "choice", choices=tuple(value))
    if not isinstance(value, Mapping) or kind not in ("int", "float"):
        allowed = "a list of choices" if kind in ("str", "bool") else "{low, high} or a list"
        raise ConfigError(f"{where}.{name}: expected {allowed}, got {value!r}")
    unknown = set(value) - _RANGE_KEYS
    if unknown or not {"low", "high"} <= set(value):
        raise ConfigError(
            f"{where}.{name}: a range needs low and high (optional log, step), got {dict(value)}"
        )
    low, high = value["low"], value["high"]
    log, step = value.get("log", False), value.get("step")
    for bound in (low, high):
        _check_option(name, bound, where)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.{name}: log must be true or false, got {log!r}")
    if low > high:
        raise ConfigError(f"{where}.{name}: low {low} is above high {high}")
    if log and (low <= 0 or step is not None):
        raise ConfigError(f"{where}.{name}: a log range needs low > 0 and no step")
    if step is not None and (not isinstance(step, int | float) or step <= 0):
        raise ConfigError(f"{where}.{name}: step must be a positive number, got {step!r}")
    cast = int if kind == "int" else float
    return ParamSpace(name, kind, cast(low), cast(high), log,
                      None if step is None else cast(step))


def _check_option(name: str, value: Any, where: str) -> None:
    """``value`` must be a valid ``--<name>`` on its own (type and bounds)."""
    if _FIELDS[name].type == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    try:
        check(dataclasses.replace(FINETUNE_DEFAULTS, **{name: value}))
    except ConfigError as exc:
        raise ConfigError(f"{where}.{name}: {exc}") from None


__all__ = ["ParamSpace", "SearchSpace", "default_search_space", "parse_search_space"]
