"""The Model Registry beyond registering: descriptions, seed aliases, pruned models."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from mlbench.tracking._tracker import resolve_uri

# Stated, not inferred: inference imports and inspects the environment (seconds).
PIP_REQUIREMENTS = ("torch", "torchvision", "mlbench")


def describe_version(client: MlflowClient, name: str, version: str, description: str,
                     alias: str | None) -> None:
    """Set a model version's description and point ``alias`` (e.g. ``seed-0``) at it."""
    client.update_model_version(name, version, description=description)
    if alias:
        client.set_registered_model_alias(name, alias, version)


def log_pruned_model(model: Any, example: Any) -> bool:
    """Log the pruned network as an MLflow model (torch.export, no pickle) of the run.

    Returns False, with one line on stderr, when torch.export cannot trace it: the
    run's safetensors artifacts (``mlbench.load_pruned``) still rebuild it.
    """
    try:
        mlflow.pytorch.log_model(model, name="pruned_model", input_example=example,
                                 pip_requirements=list(PIP_REQUIREMENTS),
                                 validate_serving_input=False)
    except Exception as exc:  # noqa: BLE001 - torch.export cannot trace every model
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"mlbench: --log-model: torch.export cannot trace this model ({reason}); "
              "load it with mlbench.load_pruned(run_id)", file=sys.stderr)
        return False
    return True


def download_run_files(run_id: str, paths: Sequence[str],
                       tracking_uri: str | None = None) -> Path:
    """Fetch artifacts of a run into one temp folder; a ConfigError names what is missing."""
    from mlbench.errors import ConfigError

    client = MlflowClient(resolve_uri(tracking_uri))
    folder = Path(tempfile.mkdtemp(prefix="mlbench-run-"))
    for path in paths:
        try:
            client.download_artifacts(run_id, path, str(folder))
        except Exception as exc:  # noqa: BLE001 - missing run or artifact, any store
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise ConfigError(f"run {run_id}: cannot fetch {path} ({first})") from None
    return folder
