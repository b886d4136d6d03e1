"""``python -m mlbench prune``: prune, fine-tune and evaluate one configuration."""

from __future__ import annotations

import argparse
from typing import Any

from mlbench.cli._args import add_command, quiet_mlflow, split, values
from mlbench.cli._common import main_rank

SHOWN = ("base_acc1", "pre_acc1", "acc1", "acc5", "compression", "speedup", "params_nz")


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``prune`` to the subparsers of ``build_parser``."""
    add_command(sub, "prune", run, help="prune, fine-tune and evaluate one configuration",
                description="Prune the registered base model (training it first if needed), "
                "fine-tune with the masks held, evaluate, track.")


def run(args: argparse.Namespace) -> int:
    """One prune run; print its headline numbers."""
    cfg, tracking = split(values(args))
    from mlbench.cli._checks import check_names

    check_names(cfg)
    from mlbench.runs import run_prune

    quiet_mlflow()
    results = run_prune(cfg, tracking)
    if main_rank():
        print("  ".join(f"{k}={results[k]:.4g}" for k in SHOWN))
    return 0
