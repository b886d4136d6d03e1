"""Pruning schedules, one registered object each (see ``_contract``).

Importing this package registers, in order: ``oneshot`` (prune once, fine-tune),
``iterative`` (k rounds of prune and fine-tune, optionally rewinding) and ``gradual``
(Zhu & Gupta's cubic sparsity ramp during fine-tuning). All get the same total
fine-tuning epochs. A new schedule is one module here, imported below.
"""

from __future__ import annotations

import importlib

from mlbench.schedules._contract import (
    SCHEDULES,
    Checkpoints,
    NoCheckpoints,
    Schedule,
    Training,
    register_schedule,
    schedule_of,
)

for _module in ("_oneshot", "_iterative", "_gradual"):
    importlib.import_module(f"mlbench.schedules.{_module}")

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
