"""``python -m mlbench prune``: prune, fine-tune and evaluate one configuration."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from mlbench.cli._args import add_command, quiet_mlflow, split, values
from mlbench.cli._common import main_rank, open_tracker
from mlbench.names import SHOWN_METRICS as SHOWN  # the result line, declared in names.py


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``prune`` to the subparsers of ``build_parser``."""
    add_command(sub, "prune", run, help="prune, fine-tune and evaluate one configuration",
                description="Prune the registered base model (training it first if needed), "
                "fine-tune with the masks held, evaluate, track.")


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Every option's value as the run uses it (a ConfigError if bad), flat."""
    cfg, tracking = split(values(args))
    return {**cfg.flat(), **dataclasses.asdict(tracking)}


def run(args: argparse.Namespace) -> int:
    """One prune run; print its headline numbers."""
    cfg, tracking = split(values(args))
    from mlbench.cli._checks import check_names

    check_names(cfg)
    opener = open_tracker(tracking, log_model=tracking.log_model)  # before torch's import
    from mlbench.runs import run_prune

    quiet_mlflow()
    results = run_prune(cfg, tracking, opener)
    if main_rank():
        print("  ".join(f"{k}={results[k]:.4g}" for k in SHOWN))
        from mlbench.speed import describe  # issue 19: each interval, and what it says

        if describe(results):
            print(describe(results))
    return 0
