"""``python -m mlbench {train,prune,sweep,tune,list}``: options from the config dataclasses.

Every option is a flat config key spelled with dashes (``base_lr`` -> ``--base-lr``),
the same names as the MLproject parameters. Bad input prints one line on stderr and
exits with code 2, before any work starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mlbench._malloc import steady_malloc
from mlbench.config import (
    BASE_DEFAULTS,
    FINETUNE_DEFAULTS,
    DataConfig,
    OptimConfig,
    PruneConfig,
    RunConfig,
    TrackingConfig,
    option_name,
)
from mlbench.errors import ConfigError, SweepIncomplete

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "str": str,
}


def _add_fields(
    group: argparse._ArgumentGroup,
    cls: type,
    defaults: Any,
    key_prefix: str = "",
    flag_prefix: str = "",
    skip: tuple[str, ...] = (),
) -> None:
    """One option per dataclass field; values land under the flat config key."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        key = key_prefix + f.name
        flag = option_name(flag_prefix + f.name)
        default = getattr(defaults, f.name)
        extra: dict[str, Any] = {"nargs": "?", "const": True} if f.type == "bool" else {}
        group.add_argument(
            flag,
            dest=key,
            type=_PARSERS[f.type],
            default=argparse.SUPPRESS,
            metavar=f.type.upper() if f.type != "str" else "NAME",
            help=f"{f.metadata.get('help', '')} (default: {default})",
            **extra,
        )


def _add_common(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    _add_fields(data, DataConfig, DataConfig())
    run = parser.add_argument_group("run")
    run.add_argument("--model", dest="model", default=argparse.SUPPRESS, metavar="NAME",
                     help="model name (see `python -m mlbench list`) (default: lenet)")
    run.add_argument("--seed", dest="seed", type=_parse_int, default=argparse.SUPPRESS,
                     metavar="INT", help="seed of everything random in the run (default: 0)")
    run.add_argument("--device", dest="device", default=argparse.SUPPRESS, metavar="NAME",
                     help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    run.add_argument("--amp", dest="amp", type=_parse_bool, nargs="?", const=True,
                     default=argparse.SUPPRESS, metavar="BOOL",
                     help="mixed precision on CUDA (default: True)")
    run.add_argument("--memory-format", dest="memory_format", default=argparse.SUPPRESS,
                     metavar="NAME", help="auto (channels_last on CUDA), channels_last or "
                     "contiguous (default: auto)")
    run.add_argument("--compile", dest="compile", type=_parse_bool, nargs="?", const=True,
                     default=argparse.SUPPRESS, metavar="BOOL",
                     help="torch.compile the model for training (default: False)")
    tracking = parser.add_argument_group("tracking")
    tracking.add_argument("--tracking-uri", default=None, metavar="URI",
                          help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    tracking.add_argument("--experiment", default="mlbench", metavar="NAME",
                          help="MLflow experiment (ignored inside `mlflow run`) (default: mlbench)")
    tracking.add_argument("--register", type=_parse_bool, nargs="?", const=True, default=True,
                          metavar="BOOL", help="register base models in the Model Registry")
    tracking.add_argument("--checkpoint-every", type=_parse_float, default=60.0,
                          metavar="SECONDS",
                          help="seconds between training checkpoints, logged to the run; a "
                          "run started again resumes from its last one (0: every epoch, "
                          "-1: never) (default: 60)")


def build_parser() -> argparse.ArgumentParser:
    """The ``mlbench`` argument parser with its subcommands."""
    parser = _Parser(
        prog="mlbench",
        description="Pruning benchmark: train a base model, prune, fine-tune, track in MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train and register the dense base model",
                           description="Train the dense base model once per (dataset, model, "
                           "seed, recipe) and register it; reuses a registered one.")
    _add_common(train)
    _add_fields(train.add_argument_group("training"), OptimConfig, BASE_DEFAULTS, "base_")
    train.set_defaults(func=_train)

    prune = sub.add_parser("prune", help="prune, fine-tune and evaluate one configuration",
                           description="Prune the registered base model (training it first "
                           "if needed), fine-tune with the masks held, evaluate, track.")
    _add_common(prune)
    _add_fields(prune.add_argument_group("pruning"), PruneConfig, PruneConfig())
    _add_fields(prune.add_argument_group("fine-tuning"), OptimConfig, FINETUNE_DEFAULTS)
    _add_fields(prune.add_argument_group("base model training"), OptimConfig, BASE_DEFAULTS,
                "base_", "base_")
    prune.set_defaults(func=_prune)

    sweep = sub.add_parser("sweep", help="run a grid of strategies x compressions x seeds",
                           description="Prune every strategy at every compression for every "
                           "seed, one base model per seed, under one sweep run. Started again "
                           "with the same arguments, it redoes only the unfinished cells.")
    grid = sweep.add_argument_group("grid")
    grid.add_argument("--project", default=None, metavar="YAML",
                      help="a preset from projects/ (options given here override it)")
    grid.add_argument("--strategies", default=None, metavar="LIST",
                      help="comma-separated strategies (default: the five baselines)")
    grid.add_argument("--compressions", default=None, metavar="LIST",
                      help="comma-separated compressions, 1 = dense (default: 1,2,4,8,16,32)")
    grid.add_argument("--seeds", default=None, metavar="LIST",
                      help="comma-separated seeds (default: 0,1,2)")
    grid.add_argument("--prune-schedules", default=None, metavar="LIST",
                      help="comma-separated pruning schedules: oneshot, iterative, gradual "
                      "(default: oneshot)")
    grid.add_argument("--workers", dest="sweep_workers", type=_parse_int, default=1,
                      metavar="INT",
                      help="processes running cells at once on this machine (default: 1)")
    _add_common(sweep)
    _add_fields(sweep.add_argument_group("pruning"), PruneConfig, PruneConfig(),
                skip=("strategy", "compression", "prune_schedule"))
    _add_fields(sweep.add_argument_group("fine-tuning"), OptimConfig, FINETUNE_DEFAULTS)
    _add_fields(sweep.add_argument_group("base model training"), OptimConfig, BASE_DEFAULTS,
                "base_", "base_")
    sweep.set_defaults(func=_sweep)

    from mlbench.report.cli import add_report_parser  # here: both build on this module
    from mlbench.tune_cli import add_tune_parser

    add_tune_parser(sub)
    add_report_parser(sub)

    names = sub.add_parser("list", help="list registered datasets, models and strategies")
    names.set_defaults(func=_list)
    return parser


_TRACKING_KEYS = ("tracking_uri", "experiment", "register", "checkpoint_every")


def _split(args: argparse.Namespace) -> tuple[RunConfig, TrackingConfig]:
    values = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
    tracking = TrackingConfig(**{k: values.pop(k) for k in _TRACKING_KEYS})
    return RunConfig.from_flat(values), tracking


def _quiet_mlflow() -> None:
    """Keep stderr for our one line: MLflow sets its logger to INFO when imported."""
    from mlbench.tracking import quiet

    quiet()


def _main_rank() -> bool:
    """Not one of torchrun's other ranks (rank 0 alone prints results)."""
    return os.environ.get("RANK", "0") == "0"


def _train(args: argparse.Namespace) -> int:
    from mlbench.pipeline import run_train

    _quiet_mlflow()
    cfg, tracking = _split(args)
    base = run_train(cfg, tracking)
    if _main_rank():
        print(f"base model {base.name} version {base.version} (run {base.run_id})")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from mlbench.pipeline import run_prune

    _quiet_mlflow()
    cfg, tracking = _split(args)
    results = run_prune(cfg, tracking)
    keys = ("base_acc1", "pre_acc1", "acc1", "acc5", "compression", "speedup", "params_nz")
    if _main_rank():
        print("  ".join(f"{k}={results[k]:.4g}" for k in keys))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from mlbench.presets import EXTRA_KEYS, GRID_KEYS, load_preset
    from mlbench.sweep import DEFAULT_COMPRESSIONS, DEFAULT_SEEDS, Grid, parse_list, run_sweep

    _quiet_mlflow()
    given = vars(args)
    project = given.pop("project")
    preset = load_preset(project) if project else {}
    grid_values = {k: given.pop(k) for k in GRID_KEYS}
    for key in GRID_KEYS:  # an empty option (MLproject's default) means "not given"
        if grid_values[key] in (None, ""):
            grid_values[key] = preset.get(key)
    defaults = Grid()
    grid = Grid(
        strategies=parse_list(grid_values["strategies"] or defaults.strategies, str,
                              "--strategies"),
        compressions=parse_list(grid_values["compressions"] or DEFAULT_COMPRESSIONS, float,
                                "--compressions"),
        seeds=parse_list(grid_values["seeds"] or DEFAULT_SEEDS, int, "--seeds"),
        prune_schedules=parse_list(grid_values["prune_schedules"] or defaults.prune_schedules,
                                   str, "--prune-schedules"),
    )
    sweep_workers = given.pop("sweep_workers")
    args = argparse.Namespace(**{**{k: v for k, v in preset.items() if k not in EXTRA_KEYS},
                                 **given})
    cfg, tracking = _split(args)
    results = run_sweep(cfg, grid, tracking, workers=sweep_workers)
    if _main_rank():
        print(f"sweep done: {len(results)} cells run, "
              f"{len(grid.cells(cfg)) - len(results)} found")
    return 0


def _list(args: argparse.Namespace) -> int:
    from mlbench.data import dataset_names
    from mlbench.models import model_names
    from mlbench.strategies import strategy_names
    from mlbench.structured import channel_strategy_names

    print("datasets:   " + ", ".join(dataset_names()))
    print("models:     " + ", ".join(model_names()) + ", or any torchvision classifier")
    print("strategies: " + ", ".join(strategy_names()))
    print("channels:   " + ", ".join(channel_strategy_names()))
    return 0


def _leave_process_group() -> None:
    """Under torchrun, every rank leaves the process group together before exiting."""
    if "torch.distributed" in sys.modules:
        from mlbench.distributed import shutdown

        shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, 130 for Ctrl-C)."""
    args = build_parser().parse_args(argv)
    steady_malloc()  # before any tensor exists: see mlbench/_malloc.py
    try:
        code = args.func(args)
        _leave_process_group()
        return code
    except ConfigError as exc:
        print(f"mlbench {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SweepIncomplete as exc:  # work that failed after it started, kept for a rerun
        print(f"mlbench {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
