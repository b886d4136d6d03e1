"""Checks of names and presets that need no model or data (so no torch): bad input first."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mlbench.catalog import check_name
from mlbench.config import RunConfig
from mlbench.errors import ConfigError


def check_names(cfg: RunConfig, strategies: Iterable[str] | None = None) -> None:
    """A ConfigError for an unknown dataset, model or strategy, before torch is imported."""
    check_name("dataset", cfg.data.dataset)
    check_name("model", cfg.model)
    for strategy in [cfg.prune.strategy] if strategies is None else strategies:
        check_name("strategy", strategy)


def check_output(folder: str) -> None:
    """A ConfigError unless ``folder`` is a folder (or can become one) we may write in."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output {folder}: is a file; name a folder for the report")
    _check_writable(path, f"--output {folder}")


def check_store(tracking_uri: str | None) -> None:
    """A ConfigError unless a sqlite store's folder exists and may be written in."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri[len("sqlite:///"):].split("?")[0]).resolve()
    if path.is_dir():
        raise ConfigError(f"--tracking-uri {uri}: {path} is a folder; name a sqlite file")
    if not path.parent.is_dir():
        raise ConfigError(f"--tracking-uri {uri}: no folder {path.parent}")
    _check_writable(path.parent, f"--tracking-uri {uri}")


def _check_writable(path: Path, what: str) -> None:
    """Try it: a folder that exists (the path or its nearest parent) takes a file."""
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot write in {existing} ({exc.strerror}); name a "
                          "folder you may write to") from None
