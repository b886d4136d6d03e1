"""mlbench: a pruning benchmark people can trust (ShrinkBench's protocol, maintained parts).

The flow (DESIGN.md): data -> model -> base model (trained once, registered) ->
strategy scores -> masks -> fine-tune with masks held -> evaluate -> MLflow.
"""

from __future__ import annotations

__version__ = "0.1.0"

from mlbench.config import DataConfig, OptimConfig, PruneConfig, RunConfig, TrackingConfig
from mlbench.errors import ConfigError

__all__ = [
    "ConfigError",
    "DataConfig",
    "OptimConfig",
    "PruneConfig",
    "RunConfig",
    "TrackingConfig",
    "__version__",
]
