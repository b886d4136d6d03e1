"""Checks of names and presets that need no model or data (so no torch): bad input first."""

from __future__ import annotations

from collections.abc import Iterable

from mlbench.catalog import check_name
from mlbench.config import RunConfig


def check_names(cfg: RunConfig, strategies: Iterable[str] | None = None) -> None:
    """A ConfigError for an unknown dataset, model or strategy, before torch is imported."""
    check_name("dataset", cfg.data.dataset)
    check_name("model", cfg.model)
    for strategy in [cfg.prune.strategy] if strategies is None else strategies:
        check_name("strategy", strategy)


def check_output(folder: str) -> None:
    """A ConfigError unless ``folder`` is (or can become) a writable folder."""
    import os
    from pathlib import Path

    from mlbench.errors import ConfigError

    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output {folder}: is a file; name a folder for the report")
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {folder}: cannot write in {existing}; name a folder "
                          "you may write to")
