"""Kinds of pruning, one registered contract each (see ``_contract``).

    >>> kind = kind_of(cfg.prune.strategy)   # masks, nm, channels, ...
    >>> kind.check(setup, schedule)           # before any work
    >>> pruned = kind.prune(setup, batches)

Importing this package registers the kinds in display order: unstructured masks, N:M
semi-structured masks, channel removal, calibrated post-training pruning. A new kind is
one module here, imported below.
"""

from __future__ import annotations

import importlib

from mlbench.kinds._contract import (
    KINDS,
    Kind,
    Metrics,
    Pruned,
    Rows,
    ScheduleTraits,
    all_strategies,
    kind_of,
    register_kind,
    to_cpu,
)

for _module in ("_masks", "_nm", "_channels", "_calibrated"):
    importlib.import_module(f"mlbench.kinds.{_module}")

__all__ = [
    "KINDS",
    "Kind",
    "Metrics",
    "Pruned",
    "Rows",
    "ScheduleTraits",
    "all_strategies",
    "kind_of",
    "register_kind",
    "to_cpu",
]
