"""The MLflow Model Registry: base models found by the hash of what made them, their
descriptions and seed aliases, and pruned models.

A base model version is the train run's ``base_model/`` folder: its safetensors weights
and ``model.json`` (model name, input shape, classes), which ``mlbench.load_base`` rebuilds
without pickle. Registering it is one request. With ``--log-model`` the version is an
MLflow model serialized with ``torch.export`` instead (``mlflow.pytorch.load_model``,
servable), which costs seconds. Nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from mlbench.tracking._records import BaseModel, write_base_folder
from mlbench.tracking._sender import Link
from mlbench.tracking._tags import BASE_HASH, BASE_MODEL, WEIGHTS_DIR_TAG

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
        print(f"mlbench: --log-model: torch.export cannot trace this model ({_first_line(exc)}); "
              "load it with mlbench.load_pruned(run_id)", file=sys.stderr)
        return False
    return True


def download_run_files(run_id: str, paths: Sequence[str],
                       tracking_uri: str | None = None) -> Path:
    """Fetch artifacts of a run into one temp folder; a ConfigError names what is missing."""
    from mlbench.errors import ConfigError
    from mlbench.tracking._connect import resolve_uri

    client = MlflowClient(resolve_uri(tracking_uri))
    folder = Path(tempfile.mkdtemp(prefix="mlbench-run-"))
    for path in paths:
        try:
            client.download_artifacts(run_id, path, str(folder))
        except Exception as exc:  # noqa: BLE001 - missing run or artifact, any store
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise ConfigError(f"run {run_id}: cannot fetch {path} ({first})") from None
    return folder


def download_base_folder(model_uri: str, tracking_uri: str | None = None) -> Path:
    """The local ``base_model/`` folder of registered version ``model_uri``
    (``models:/<name>@<alias>`` or ``models:/<name>/<version>``); a ConfigError names a bad
    URI, a missing model, alias or version, or a run without the folder."""
    from mlbench.errors import ConfigError
    from mlbench.tracking._connect import resolve_uri

    rest = model_uri.removeprefix("models:/")
    name, alias = rest.split("@", 1) if "@" in rest else (rest, None)
    name, _, version = name.partition("/") if alias is None else (name, "", "")
    if rest == model_uri or not name or not (alias or version.isdigit()):
        raise ConfigError(f"{model_uri!r} is not a model URI; use "
                          "'models:/<name>@<alias>' or 'models:/<name>/<version>'")
    client = MlflowClient(resolve_uri(tracking_uri))
    try:
        mv = (client.get_model_version_by_alias(name, alias) if alias
              else client.get_model_version(name, version))
    except mlflow.exceptions.MlflowException as exc:
        raise ConfigError(f"{model_uri}: {_first_line(exc)}") from None
    folder = mv.tags.get(WEIGHTS_DIR_TAG, BASE_MODEL)
    return download_run_files(mv.run_id, (folder,), tracking_uri) / folder


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

    def register(self, name: str, base_hash: str, note: dict[str, Any], *,
                 model: Any = None, example: Any = None) -> str | None:  # noqa: ANN401
        """Register the active run's base model as a new version of ``name``.

        The version is the run's ``base_model/`` folder (``weights.safetensors`` and
        ``model.json``, the ``note`` that rebuilds the network), which the caller logged
        with ``log_base_folder``: registering is one request, and nothing is pickled.
        With ``model`` (``--log-model``) the version is instead an MLflow model serialized
        with ``torch.export``, loadable with ``mlflow.pytorch.load_model`` and servable;
        it costs seconds (export, and MLflow's check of its requirements). A model that
        ``torch.export`` cannot trace falls back to the folder, with one line on stderr.
        """
        if not self.register_models:
            return None
        run_id = mlflow.active_run().info.run_id
        tags = {BASE_HASH: base_hash, "mlbench.run_id": run_id, WEIGHTS_DIR_TAG: BASE_MODEL}
        if model is not None:
            try:
                info = mlflow.pytorch.log_model(
                    model, name="model", input_example=example,
                    pip_requirements=list(PIP_REQUIREMENTS), validate_serving_input=False)
            except Exception as exc:  # noqa: BLE001 - torch.export cannot trace every model
                print(f"mlbench: --log-model: torch.export cannot trace {note.get('model')} "
                      f"({_first_line(exc)}); registering its safetensors weights",
                      file=sys.stderr)
            else:
                mv = self.link.call(mlflow.register_model, info.model_uri, name, tags=tags)
                return str(mv.version)
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # it exists
            self.link.call(self.client.create_registered_model, name)
        mv = self.link.call(
            self.client.create_model_version, name,
            source=mlflow.get_artifact_uri(BASE_MODEL), run_id=run_id,
            tags={**tags, "mlbench.format": "safetensors"})
        return str(mv.version)


def log_base_folder(link: Link, weights: dict[str, Any], note: dict[str, Any]) -> None:
    """Log ``base_model/`` (safetensors ``weights`` and ``model.json``) to the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        log_base_files(link, write_base_folder(Path(tmp), weights, note))


def log_base_files(link: Link, folder: Path) -> None:
    """Log a ``base_model/`` folder written by ``write_base_folder`` to the active run."""
    link.call(mlflow.log_artifacts, str(folder), BASE_MODEL)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = [
    "PIP_REQUIREMENTS", "BaseModel", "Registry", "describe_version", "download_base_folder",
    "download_run_files",
    "log_base_files", "log_base_folder", "log_pruned_model",
]
