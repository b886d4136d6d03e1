"""``python -m mlbench list``: the registered datasets, models and strategies."""

from __future__ import annotations

import argparse
from typing import Any

from mlbench.cli._args import add_command


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``list`` to the subparsers of ``build_parser``."""
    add_command(sub, "list", run, help="list registered datasets, models and strategies",
                description="The names --dataset, --model and --strategy accept.")


def run(args: argparse.Namespace) -> int:
    """Print the names, read from the source (no torch import: see mlbench/catalog.py)."""
    from mlbench.catalog import names
    from mlbench.names import strategy_rank

    print("datasets:   " + ", ".join(names("dataset")))
    print("models:     " + ", ".join(names("model")) + ", or any torchvision classifier")
    print("strategies: " + ", ".join(sorted(names("strategy"), key=strategy_rank)))
    return 0
