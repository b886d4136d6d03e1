"""``python -m mlbench sweep``: strategies x compressions x seeds, one base model per seed."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from mlbench.cli._args import add_command, quiet_mlflow, split, unset_empty, values
from mlbench.cli._checks import check_names
from mlbench.cli._common import main_rank
from mlbench.config import RunConfig, TrackingConfig, check
from mlbench.grid import Grid, parse_grid
from mlbench.options import GridOptions, keys_of
from mlbench.presets import EXTRA_KEYS, load_preset

_OWN = keys_of(GridOptions)  # the sweep's own options; the rest make each cell's RunConfig


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``sweep`` to the subparsers of ``build_parser``."""
    add_command(sub, "sweep", run, help="run a grid of strategies x compressions x seeds",
                description="Prune every strategy at every compression for every seed, one "
                "base model per seed, under one sweep run. Started again with the same "
                "arguments, it redoes only the unfinished cells. An empty option value "
                "means \"not given\": the preset's, else the default.",
                empty_means_unset=True)


@dataclass(frozen=True)
class SweepSettings:
    """What ``sweep`` was asked, resolved: its own options, the grid, the cells' config."""

    own: GridOptions
    grid: Grid
    cfg: RunConfig
    tracking: TrackingConfig
    given: frozenset[str] = frozenset()  # the own options given (not defaults)

    def flat(self) -> dict[str, Any]:
        """Every option's value as the sweep uses it (the grid's axes parsed)."""
        return {**dataclasses.asdict(self.own), **self.cfg.flat(),
                **dataclasses.asdict(self.tracking), **dataclasses.asdict(self.grid)}


def resolve(args: argparse.Namespace) -> SweepSettings:
    """The options, the preset under them and the grid, checked (a ConfigError if bad)."""
    given = unset_empty(values(args))
    own = {k: given.pop(k) for k in _OWN if k in given}
    opts = GridOptions(**own)
    check(opts)
    preset = load_preset(own["project"]) if "project" in own else {}
    grid = parse_grid({**preset, **own})
    cfg, tracking = split({**{k: v for k, v in preset.items() if k not in EXTRA_KEYS},
                           **given})
    check_names(cfg, grid.strategies)
    for cell in grid.cells(cfg):  # what ties options together (rounds vs epochs) per cell
        cell.check()
    return SweepSettings(opts, grid, cfg, tracking, frozenset(own))


def run(args: argparse.Namespace) -> int:
    """Check the whole grid, then work its queue until every cell is done."""
    settings = resolve(args)
    own = settings.own
    from mlbench.sweep import run_sweep
    from mlbench.tuning import DEFAULT_GRACE_S

    quiet_mlflow()
    grace = own.grace if "grace" in settings.given else DEFAULT_GRACE_S  # $MLBENCH_GRACE
    done = run_sweep(settings.cfg, settings.grid, settings.tracking, workers=own.workers,
                     storage=own.storage or None, grace_s=grace)
    if main_rank():
        print(f"sweep done: all {done.total} items of study {done.study} finished "
              f"({done.ran} by this process); queue in {done.storage}")
    return 0

