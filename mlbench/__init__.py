"""mlbench: a pruning benchmark people can trust (ShrinkBench's protocol, maintained parts).

The flow (DESIGN.md): data -> model -> base model (trained once, registered) ->
strategy scores -> masks -> fine-tune with masks held -> evaluate -> MLflow.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from mlbench.config import DataConfig, OptimConfig, PruneConfig, RunConfig, TrackingConfig
from mlbench.errors import ConfigError


def load_pruned(run_id: str, tracking_uri: str | None = None) -> Any:  # noqa: ANN401
    """The fine-tuned pruned network of prune run ``run_id`` (see mlbench/pruned.py).

    Rebuilt from the run's safetensors and JSON artifacts, without pickle; imports torch
    and mlflow when called, so ``import mlbench`` stays light.

    Example:
        >>> model = mlbench.load_pruned("0f3c...", tracking_uri="sqlite:////abs/mlflow.db")
    """
    from mlbench.pruned import load_pruned as load

    return load(run_id, tracking_uri)


def load_base(model_uri: str, tracking_uri: str | None = None) -> Any:  # noqa: ANN401
    """The registered dense base model ``model_uri`` (see mlbench/pruned.py).

    ``models:/<name>@seed-<N>`` is the base every strategy at seed N prunes. Rebuilt from
    safetensors and JSON, without pickle; imports torch and mlflow when called.

    Example:
        >>> model = mlbench.load_base("models:/mlbench-digits-lenet@seed-0")
    """
    from mlbench.pruned import load_base as load

    return load(model_uri, tracking_uri)

__all__ = [
    "ConfigError",
    "DataConfig",
    "OptimConfig",
    "PruneConfig",
    "RunConfig",
    "TrackingConfig",
    "__version__",
    "load_base",
    "load_pruned",
]
