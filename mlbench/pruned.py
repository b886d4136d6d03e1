"""``load_pruned(run_id)`` and ``load_base(model_uri)``: networks from runs, no pickle.

``load_base`` rebuilds a registered dense base model from its train run's ``base_model/``
folder (``model.json`` names the model, input shape and classes; ``weights.safetensors``).

An unstructured prune run logs ``config.json`` (its resolved config, with the model's
input shape and class count), ``masks.safetensors`` and ``weights.safetensors`` (the
fine-tuned weights, pruned ones exactly zero): the network is rebuilt from the model
registry by name. A channel (structured) run logs ``structure.json`` (the smaller
architecture) instead of masks: the network is rebuilt from that description. Weights
load from safetensors either way, so nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from mlbench.config import RunConfig
from mlbench.errors import ConfigError
from mlbench.masks import apply_masks, load_masks
from mlbench.models import create_model
from mlbench.structured import DESCRIPTION, is_structured, load_channel_pruned

CONFIG_FILE = "config.json"
MASKS_FILE = "masks.safetensors"
WEIGHTS_FILE = "weights.safetensors"


def build_pruned(folder: str | Path) -> nn.Module:
    """The pruned network from a folder holding a prune run's three artifacts."""
    folder = Path(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    if "input_shape" not in config:
        raise ConfigError(f"{folder / CONFIG_FILE} has no input_shape: the run predates "
                          "load_pruned; rerun it with this version of mlbench")
    keys = set(RunConfig().flat())
    cfg = RunConfig.from_flat({k: v for k, v in config.items() if k in keys})
    model = create_model(cfg.model, tuple(config["input_shape"]), int(config["num_classes"]))
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    apply_masks(model, load_masks(folder / MASKS_FILE))  # zero already; exact by construction
    return model.eval()


def load_pruned(run_id: str, tracking_uri: str | None = None) -> nn.Module:
    """The fine-tuned pruned network of prune run ``run_id``, in eval mode, on the CPU.

    Rebuilt from the run's artifacts (config, masks, weights; safetensors and JSON, no
    pickle), so its outputs are those the run measured.

    Args:
        run_id: the MLflow run id of a ``prune`` run.
        tracking_uri: the store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db).

    Raises:
        ConfigError: the run is missing, or lacks one of the artifacts.

    Example:
        >>> model = mlbench.load_pruned("0f3c...")
        >>> model(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 10])
    """
    from mlbench.tracking import download_run_files

    folder = download_run_files(run_id, (CONFIG_FILE,), tracking_uri)
    strategy = json.loads((folder / CONFIG_FILE).read_text()).get("strategy", "")
    if is_structured(str(strategy)):  # a smaller dense network: its description, no masks
        folder = download_run_files(run_id, (DESCRIPTION, WEIGHTS_FILE), tracking_uri)
        return load_channel_pruned(folder / DESCRIPTION, folder / WEIGHTS_FILE).eval()
    folder = download_run_files(run_id, (CONFIG_FILE, MASKS_FILE, WEIGHTS_FILE), tracking_uri)
    return build_pruned(folder)


def load_base(model_uri: str, tracking_uri: str | None = None) -> nn.Module:
    """The registered dense base model ``model_uri``, in eval mode, on the CPU.

    Args:
        model_uri: ``models:/<name>@<alias>`` (every seed has one: ``seed-0``, ...) or
            ``models:/<name>/<version>``, as the Model Registry lists it.
        tracking_uri: the store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db).

    Raises:
        ConfigError: no such model, alias or version, or its run lacks ``base_model/``.

    Example:
        >>> model = mlbench.load_base("models:/mlbench-digits-lenet@seed-0")
    """
    from mlbench.tracking import MODEL_JSON, download_base_folder

    folder = download_base_folder(model_uri, tracking_uri)
    note = json.loads((folder / MODEL_JSON).read_text())
    model = create_model(note["model"], tuple(note["input_shape"]), int(note["num_classes"]))
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return model.eval()
