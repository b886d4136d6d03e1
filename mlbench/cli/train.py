"""``python -m mlbench train``: train and register the dense base model (or reuse it)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from mlbench.cli._args import add_command, quiet_mlflow, split, values
from mlbench.cli._common import main_rank, open_tracker


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``train`` to the subparsers of ``build_parser``."""
    add_command(sub, "train", run, help="train and register the dense base model",
                description="Train the dense base model once per (dataset and its content, "
                "model, seed, recipe) and register it; reuses a registered one.")


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Every option's value as the run uses it (a ConfigError if bad), flat."""
    cfg, tracking = split(values(args))
    return {**cfg.flat(), **dataclasses.asdict(tracking)}


def run(args: argparse.Namespace) -> int:
    """Train (or find) the base model; print its registered name and version."""
    cfg, tracking = split(values(args))
    opener = open_tracker(tracking, log_model=tracking.log_model)  # before torch's import
    from mlbench.runs import run_train

    quiet_mlflow()
    base = run_train(cfg, tracking, opener)
    if main_rank():
        print(f"base model {base.name} version {base.version} (run {base.run_id})")
    return 0
