"""``python -m mlbench sweep``: strategies x compressions x seeds, one base model per seed."""

from __future__ import annotations

import argparse
from typing import Any

from mlbench.cli._args import add_command, quiet_mlflow, split, unset_empty, values
from mlbench.cli._checks import check_names
from mlbench.cli._common import main_rank
from mlbench.config import check
from mlbench.grid import parse_grid
from mlbench.options import GridOptions
from mlbench.presets import EXTRA_KEYS, load_preset

_OWN = ("project", "strategies", "compressions", "seeds", "workers", "storage", "grace")


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``sweep`` to the subparsers of ``build_parser``."""
    add_command(sub, "sweep", run, help="run a grid of strategies x compressions x seeds",
                description="Prune every strategy at every compression for every seed, one "
                "base model per seed, under one sweep run. Started again with the same "
                "arguments, it redoes only the unfinished cells. An empty option value "
                "means \"not given\": the preset's, else the default.",
                empty_means_unset=True)


def run(args: argparse.Namespace) -> int:
    """Check the whole grid, then work its queue until every cell is done."""
    given = unset_empty(values(args))
    own = {k: given.pop(k) for k in _OWN if k in given}
    check(GridOptions(**own))
    preset = load_preset(own["project"]) if "project" in own else {}
    grid = parse_grid({**preset, **own})
    workers = own.get("workers", 1)
    cfg, tracking = split({**{k: v for k, v in preset.items() if k not in EXTRA_KEYS},
                           **given})
    check_names(cfg, grid.strategies)
    from mlbench.sweep import run_sweep
    from mlbench.tuning import DEFAULT_GRACE_S

    quiet_mlflow()
    done = run_sweep(cfg, grid, tracking, workers=workers, storage=own.get("storage"),
                     grace_s=own.get("grace", DEFAULT_GRACE_S))
    if main_rank():
        print(f"sweep done: all {done.total} items of study {done.study} finished "
              f"({done.ran} by this process); queue in {done.storage}")
    return 0

