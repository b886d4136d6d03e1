"""The MLflow Model Registry: base models found by the hash of what made them, their
descriptions and seed aliases, and pruned models.

A base model is registered as an MLflow model serialized with ``torch.export`` (no
pickle), loadable with ``mlflow.pytorch.load_model``. A model that ``torch.export`` cannot
trace is registered as its safetensors weights with a JSON note of how to rebuild it,
and the version's description says how to load it: nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from mlbench.tracking._sender import Link
from mlbench.tracking._tags import BASE_HASH, WEIGHTS

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
    from mlbench.tracking._runs import resolve_uri  # _runs builds on this module

    client = MlflowClient(resolve_uri(tracking_uri))
    folder = Path(tempfile.mkdtemp(prefix="mlbench-run-"))
    for path in paths:
        try:
            client.download_artifacts(run_id, path, str(folder))
        except Exception as exc:  # noqa: BLE001 - missing run or artifact, any store
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise ConfigError(f"run {run_id}: cannot fetch {path} ({first})") from None
    return folder


WEIGHTS_MODEL = "weights_model"  # artifact folder of a base registered as weights


@dataclass(frozen=True)
class BaseModel:
    """A registered dense base model: where its weights are and what made them."""

    run_id: str
    name: str
    version: str | None


class Registry:
    """Finds and registers base models (``register=False`` logs but never registers)."""

    def __init__(self, client: MlflowClient, link: Link, *, register: bool = True) -> None:
        self.client = client
        self.link = link
        self.register_models = register
        self._found: dict[tuple[str, str], BaseModel] = {}

    def find(self, name: str, base_hash: str) -> BaseModel | None:
        """The newest registered version of ``name`` whose base hash matches, if any.

        A base model once found is remembered: a finished run never changes.
        """
        if (name, base_hash) in self._found:
            return self._found[(name, base_hash)]
        try:
            versions = self.link.call(self.client.search_model_versions,
                                      f"name='{name}' and tags.`{BASE_HASH}`='{base_hash}'")
        except mlflow.exceptions.MlflowException:
            versions = []
        for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
            run = self.link.call(self.client.get_run, mv.run_id)
            if run.info.status == "FINISHED":
                found = BaseModel(run_id=mv.run_id, name=name, version=str(mv.version))
                self._found[(name, base_hash)] = found
                return found
        return None

    def describe(self, name: str, version: str | None, description: str,
                 alias: str | None = None) -> None:
        """A registered base model's description and its ``seed-N`` alias."""
        if version is not None:
            self.link.call(describe_version, self.client, name, version, description, alias)

    def version_of(self, name: str, run_id: str) -> str | None:
        """The registered version of ``name`` that run ``run_id`` made, if any."""
        try:
            versions = self.link.call(self.client.search_model_versions,
                                      f"name='{name}' and run_id='{run_id}'")
        except mlflow.exceptions.MlflowException:
            return None
        return str(max(int(v.version) for v in versions)) if versions else None

    def register(self, name: str, model: Any, example: Any, base_hash: str,
                 note: dict[str, Any]) -> str | None:
        """Register ``model`` (trained in the active run) as ``name``; return its version.

        ``note`` (model name, input shape, classes) is what rebuilds the model from its
        weights when torch.export cannot trace it.
        """
        if not self.register_models:
            return None
        run_id = mlflow.active_run().info.run_id
        # Stated requirements and no serving check (MLflow would load the model back and
        # predict the example): registering costs little beyond writing the weights.
        options = {"name": "model", "pip_requirements": list(PIP_REQUIREMENTS),
                   "validate_serving_input": False}
        try:
            info = mlflow.pytorch.log_model(model, input_example=example, **options)
        except Exception:  # noqa: BLE001 - torch.export cannot trace every model
            return self._register_weights(name, run_id, base_hash, note)
        mv = mlflow.register_model(info.model_uri, name, tags={BASE_HASH: base_hash})
        self.client.set_model_version_tag(name, mv.version, "mlbench.run_id", run_id)
        return str(mv.version)

    def _register_weights(self, name: str, run_id: str, base_hash: str,
                          note: dict[str, Any]) -> str:
        """The safetensors weights (already logged by the run) and ``note``, as a version."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / WEIGHTS_MODEL).mkdir()
            self.link.call(self.client.download_artifacts, run_id, WEIGHTS,
                           str(folder / WEIGHTS_MODEL))
            (folder / WEIGHTS_MODEL / "model.json").write_text(json.dumps(note, indent=2))
            self.link.call(mlflow.log_artifacts, str(folder / WEIGHTS_MODEL), WEIGHTS_MODEL)
        description = (
            f"torch.export could not trace this model, so it is registered as safetensors "
            f"weights (no pickle). Load it with: mlbench.models.create_model("
            f"{note.get('model')!r}, {tuple(note.get('input_shape', ()))}, "
            f"{note.get('num_classes')}).load_state_dict(safetensors.torch.load_file("
            f"mlflow.artifacts.download_artifacts('models:/{name}/<version>') + "
            f"'/{WEIGHTS}'))")
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # it exists
            self.client.create_registered_model(name)
        mv = self.client.create_model_version(
            name, source=mlflow.get_artifact_uri(WEIGHTS_MODEL), run_id=run_id,
            tags={BASE_HASH: base_hash, "mlbench.run_id": run_id, "mlbench.format": "safetensors"},
            description=description)
        return str(mv.version)


__all__ = [
    "PIP_REQUIREMENTS", "WEIGHTS_MODEL", "BaseModel", "Registry", "describe_version",
    "download_run_files", "log_pruned_model",
]
