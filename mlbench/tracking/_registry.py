"""Base models in the MLflow Model Registry: found by the hash of what made them.

A base model is registered as an MLflow model serialized with ``torch.export`` (no
pickle), loadable with ``mlflow.pytorch.load_model``. A model that ``torch.export`` cannot
trace is registered as its safetensors weights with a JSON note of how to rebuild it,
and the version's description says how to load it: nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from mlbench.tracking._sender import Link
from mlbench.tracking._tags import BASE_HASH, WEIGHTS

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
        options = {"name": "model", "pip_requirements": ["torch", "torchvision"]}
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


__all__ = ["WEIGHTS_MODEL", "BaseModel", "Registry"]
