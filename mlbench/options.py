"""Every option once: name, type, default, bounds, help -> CLI parsers, MLproject, presets.

An option is a field of a config dataclass declared with ``_opt(default, help, **bounds)``
(``mlbench/config.py`` for what decides a run, the classes below for what steers a
command). ``command_options(command)`` lists the options of one subcommand; the CLI builds
its parsers from it (``mlbench/cli/_args.py``), ``mlbench/cli/mlproject.py`` writes both
MLproject files from it, and presets accept the flat keys of ``RunConfig``. So adding one
field to one dataclass adds ``--the-option`` to every subcommand that takes its group, to
the MLproject ``main`` entry point, and to the keys a preset may hold.

``param_text`` is the one spelling of a value as an MLflow param, and the one every door
writes: ``mlflow run`` logs the entry point's parameters as text before mlbench starts, so
the MLproject defaults are written in it and the CLI logs the same text.

Importing this module imports nothing heavy (no torch, mlflow, optuna or pandas).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mlbench.config import (
    BASE_DEFAULTS,
    CELL_KEYS,
    FINETUNE_DEFAULTS,
    MAX_COMPRESSION,
    MAX_SEED,
    DataConfig,
    OptimConfig,
    PruneConfig,
    RunConfig,
    TrackingConfig,
    _opt,
)

COMMANDS = ("train", "prune", "sweep", "tune", "report", "findings", "list")


@dataclass(frozen=True)
class Option:
    """One command-line option: its flat config key, flag, type, default, bounds, help."""

    key: str  # where the value lands (a flat config key: ``base_lr``)
    flag: str  # how it is spelled (``--base-lr``; ``--lr`` for ``train``'s base_lr)
    kind: str  # int, float, bool or str
    default: Any
    help: str
    group: str
    bounds: dict[str, Any] = dataclasses.field(default_factory=dict)
    repeat: bool = False  # may be given several times (``report --experiment``)

    @property
    def param(self) -> str:
        """The MLproject parameter name: the flag without dashes, underscores inside."""
        return self.flag[2:].replace("-", "_")


@dataclass(frozen=True)
class GridOptions:
    """``sweep``: which cells (empty: the preset's, else the default)."""

    project: str = _opt("", "a preset from projects/ (options given here override it)")
    strategies: str = _opt("", "comma-separated strategies (default: the paper's five "
                           "baselines)", items="str")
    compressions: str = _opt("", "comma-separated compressions, 1 = dense "
                             "(default: 1,2,4,8,16,32)", items="float", ge=1,
                             le=MAX_COMPRESSION)
    seeds: str = _opt("", "comma-separated seeds (default: 0,1,2)", items="int", ge=0,
                      le=MAX_SEED)
    prune_schedules: str = _opt("", "comma-separated pruning schedules: oneshot, iterative, "
                                "gradual (default: oneshot)", items="str")
    workers: int = _opt(1, "processes running cells at once on this machine", ge=1, le=1024)
    storage: str = _opt("", "the Optuna storage holding the sweep's queue: journal:PATH, "
                        "sqlite:///PATH, or postgresql://... for several machines (default: "
                        "optuna.journal beside the MLflow store)")
    grace: int = _opt(60, "seconds without a heartbeat after which a worker counts as dead "
                      "and its cell is redone by another", ge=2, le=7 * 24 * 3600)


@dataclass(frozen=True)
class TuneOptions:
    """``tune``: the studies (empty: the preset's, else the default)."""

    project: str = _opt("", "a preset from projects/ holding the search_space (and recipe)")
    strategies: str = _opt("", "comma-separated strategies, one study each (default: the "
                           "paper's five baselines)", items="str")
    trials: int = _opt(20, "the budget: finished trials per strategy, pruned ones "
                       "included", ge=1, le=100_000)
    storage: str = _opt("", "Optuna storage: sqlite:///PATH, postgresql://..., or "
                        "journal:PATH for many workers (default: optuna.journal beside the MLflow "
                        "store)")
    study_prefix: str = _opt("mlbench", "first part of every study name")
    seeds: str = _opt("", "seeds of the tuned runs on the test split (default: the "
                      "preset's, else 0,1,2)", items="int", ge=0, le=MAX_SEED)


@dataclass(frozen=True)
class ReportOptions:
    """``report``: which runs, where the files go."""

    experiment: str = _opt("", "experiment name(s), repeatable or comma-separated "
                           "(default: every experiment of the store)", items="str")
    filter: str = _opt("", "MLflow search filter ANDed with the prune stage, e.g. "
                       "\"params.dataset = 'digits'\"")
    output: str = _opt("report", "folder for the files")
    layers_at: float = _opt(0.0, "compression of the per-layer density plot (0: the "
                            "largest one every strategy ran)", ge=0, le=MAX_COMPRESSION)
    log: bool = _opt(True, "log the files as a `report` run")
    # issue 21: SVGs cost as much as the PNGs again; the page embeds only the PNGs
    svg: bool = _opt(False, "also write every plot as SVG (vector, for papers)")
    tracking_uri: str = _opt("", "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                             "else ./mlflow.db)")


@dataclass(frozen=True)
class FindingsOptions:
    """``findings``: which runs, which accuracy, where the tables go."""

    experiment: str = _opt("", "experiment name(s), repeatable or comma-separated "
                           "(default: every experiment of the store)", items="str")
    filter: str = _opt("", "MLflow search filter ANDed with the prune stage, e.g. "
                       "\"params.model = 'mlp'\"")
    metric: str = _opt("acc1", "the accuracy compared", choices=("acc1", "acc5"))
    output: str = _opt("", "also write findings.csv, findings.md and "
                       "findings-comparisons.csv into this folder (default: print only)")
    tracking_uri: str = _opt("", "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                             "else ./mlflow.db)")


def fields(cls: type, defaults: Any = None, *, group: str, key_prefix: str = "",
           flag_prefix: str = "", skip: Iterable[str] = ()) -> list[Option]:
    """One Option per ``_opt`` field of the dataclass ``cls`` (defaults from ``defaults``)."""
    defaults = cls() if defaults is None else defaults
    skip = set(skip)
    return [
        Option(
            key=key_prefix + f.name,
            flag="--" + (flag_prefix + f.name).replace("_", "-"),
            kind=f.type.split("|")[0].strip(),
            default=getattr(defaults, f.name),
            help=f.metadata.get("help", ""),
            group=group,
            bounds={k: v for k, v in f.metadata.items() if k != "help"},
            repeat=cls in (ReportOptions, FindingsOptions) and f.name == "experiment",
        )
        for f in dataclasses.fields(cls)
        if "help" in f.metadata and f.name not in skip
    ]


def _run_top() -> list[Option]:
    return fields(RunConfig, group="run")


def _recipe(*, skip_prune: Iterable[str] = ()) -> list[Option]:
    """data, run, pruning, fine-tuning and base-model options of a prune run."""
    return [
        *fields(DataConfig, group="data"),
        *_run_top(),
        *fields(PruneConfig, group="pruning", skip=skip_prune),
        *fields(OptimConfig, FINETUNE_DEFAULTS, group="fine-tuning"),
        *fields(OptimConfig, BASE_DEFAULTS, group="base model training",
                key_prefix="base_", flag_prefix="base_"),
    ]


def _tracking(*, log_model: bool = False) -> list[Option]:
    skip = () if log_model else ("log_model",)
    return fields(TrackingConfig, group="tracking", skip=skip)


def command_options(command: str) -> list[Option]:
    """The options of ``python -m mlbench <command>``, in help order."""
    if command == "train":  # the base recipe, spelled without the base- prefix
        return [*fields(DataConfig, group="data"), *_run_top(),
                *fields(OptimConfig, BASE_DEFAULTS, group="training", key_prefix="base_"),
                *_tracking()]
    if command == "prune":
        return [*_recipe(), *_tracking(log_model=True)]
    if command == "sweep":
        return [*fields(GridOptions, group="grid"),
                *_recipe(skip_prune=CELL_KEYS),  # the grid's axes give them per cell
                *_tracking(log_model=True)]
    if command == "tune":
        return [*fields(TuneOptions, group="tuning"), *_recipe(skip_prune=("strategy",)),
                *_tracking()]
    if command == "report":
        return fields(ReportOptions, group="report")
    if command == "findings":
        return fields(FindingsOptions, group="findings")
    if command == "list":
        return []
    raise ValueError(f"unknown command {command!r}")


def keys_of(cls: type) -> tuple[str, ...]:
    """The option keys a dataclass declares (``GridOptions`` -> ``project``, ``strategies``,
    ...): the one list of a command's own options, derived, never written out."""
    return tuple(f.name for f in dataclasses.fields(cls) if "help" in f.metadata)


TRACKING_KEYS = keys_of(TrackingConfig)


def preset_keys() -> list[str]:
    """The keys of RunConfig a preset may set (the grid and search-space keys apart)."""
    return list(RunConfig().flat())


def param_text(value: Any) -> str:
    """A value as text in MLflow params, the same from every door (``mlflow run``, CLI).

    Booleans are ``true``/``false`` (YAML's and ``mlflow run -P``'s spelling); whole
    numbers have no ``.0`` (``-P compression=8`` logs ``8``); other floats are Python's
    shortest round-trip form; ``None`` is the empty string.

    Example:
        >>> [param_text(v) for v in (True, 8.0, 0.0005, 3, None)]
        ['true', '8', '0.0005', '3', '']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value == int(value) \
            and abs(value) < 1e15:
        return str(int(value))
    return str(value)


__all__ = [
    "COMMANDS",
    "GridOptions",
    "TRACKING_KEYS",
    "Option",
    "FindingsOptions",
    "ReportOptions",
    "TuneOptions",
    "command_options",
    "fields",
    "keys_of",
    "param_text",
    "preset_keys",
]
