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
import pkgutil

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

# The built-in ones in display order, then any other module of the package by name: a
# new kind is one file here, nothing else to edit.
for _module in ("_masks", "_nm", "_channels"):
    importlib.import_module(f"mlbench.kinds.{_module}")
for _found in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _found.name != "_contract":
        importlib.import_module(f"mlbench.kinds.{_found.name}")

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
