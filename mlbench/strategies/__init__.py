"""Pruning strategies: named scoring functions, each with an allocation (global or layer).

A strategy takes the model, its prunable parameters, a fixed list of training batches
and a seeded generator, and returns one score per weight (higher = keep). It never
edits the model. Adding a strategy is one decorated function:

    >>> @register_strategy("global_my_score", allocation="global")
    ... def my_score(model, params, batches, generator):
    ...     return {name: p.detach().abs() for name, p in params.items()}
"""

from __future__ import annotations

import importlib

from mlbench.strategies._registry import (
    STRATEGIES,
    Batch,
    Scorer,
    register_strategy,
    strategy_allocation,
    strategy_kind,
    strategy_names,
)

# Importing the modules registers the paper's five baselines, in the paper's order, then
# SNIP, GraSP, SynFlow and LAMP, then 2:4 semi-structured magnitude.
for _module in ("_magnitude", "_gradient", "_random", "_modern", "_semi"):
    importlib.import_module(f"mlbench.strategies.{_module}")

from mlbench.strategies._semi import pattern_floor  # noqa: E402  (registered above, in order)

__all__ = [
    "STRATEGIES",
    "Batch",
    "Scorer",
    "pattern_floor",
    "register_strategy",
    "strategy_allocation",
    "strategy_kind",
    "strategy_names",
]
