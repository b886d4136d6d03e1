"""A sweep's queue items, typed: the sweep's own run, a seed's base model, one cell.

Each item is a frozen dataclass; in the queue (an Optuna trial's ``mlbench.key`` user
attribute) it is its canonical JSON, ``{"item": "cell", "strategy": ..., ...}``, which
``item_of`` reads back. Nothing parses prefixes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from mlbench.config import PruneConfig, RunConfig


@dataclass(frozen=True)
class SweepRun:
    """Open the sweep's MLflow run, the parent of its cells' runs (the first item)."""


@dataclass(frozen=True)
class BaseItem:
    """Train (or find) the base model of one seed."""

    seed: int


@dataclass(frozen=True)
class CellItem:
    """One prune run: a strategy at a compression, under a schedule, for a seed."""

    strategy: str
    schedule: str
    compression: float
    seed: int
    calib_seed: int | None = None  # post-training cells: a calibration seed but the default

    @classmethod
    def of(cls, cfg: RunConfig) -> CellItem:
        """The cell that runs ``cfg``."""
        p = cfg.prune
        calib = None if p.calib_seed == PruneConfig().calib_seed else p.calib_seed
        return cls(p.strategy, p.prune_schedule, float(p.compression), cfg.seed, calib)

    def base(self) -> BaseItem:
        """The base model this cell prunes."""
        return BaseItem(self.seed)


Item = SweepRun | BaseItem | CellItem
_NAMES: dict[str, type] = {"sweep": SweepRun, "base": BaseItem, "cell": CellItem}


def key(item: Item) -> str:
    """The item as the queue holds it: canonical JSON."""
    name = next(n for n, t in _NAMES.items() if isinstance(item, t))
    fields = dataclasses.asdict(item)
    if fields.get("calib_seed", 0) is None:  # every other cell keeps the key it had
        del fields["calib_seed"]
    return json.dumps({"item": name, **fields}, sort_keys=True)


def item_of(text: str) -> Item:
    """The item a queue key holds (``key``'s inverse)."""
    values: dict[str, Any] = json.loads(text)
    return _NAMES[values.pop("item")](**values)
