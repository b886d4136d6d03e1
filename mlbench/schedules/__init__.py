"""Pruning schedules, one registered object each (see ``_contract``).

Importing this package registers, in order: ``oneshot`` (prune once, fine-tune),
``iterative`` (k rounds of prune and fine-tune, optionally rewinding) and ``gradual``
(Zhu & Gupta's cubic sparsity ramp during fine-tuning). All get the same total
fine-tuning epochs. A new schedule is one module here; the loop below imports it.
"""

from __future__ import annotations

import importlib
import pkgutil

from mlbench.schedules._contract import (
    SCHEDULES,
    Checkpoints,
    NoCheckpoints,
    Schedule,
    Training,
    register_schedule,
    schedule_of,
)

# The built-in ones in display order, then any other module of the package by name: a
# new schedule is one file here, nothing else to edit.
for _module in ("_oneshot", "_iterative", "_gradual"):
    importlib.import_module(f"mlbench.schedules.{_module}")
for _found in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _found.name != "_contract":
        importlib.import_module(f"mlbench.schedules.{_found.name}")

from mlbench.schedules._gradual import gradual_keeps  # noqa: E402  (registered above)
from mlbench.schedules._iterative import iterative_keeps, round_epochs  # noqa: E402

__all__ = [
    "SCHEDULES",
    "Checkpoints",
    "NoCheckpoints",
    "Schedule",
    "Training",
    "gradual_keeps",
    "iterative_keeps",
    "register_schedule",
    "round_epochs",
    "schedule_of",
]
