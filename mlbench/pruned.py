"""``load_pruned(run_id)`` and ``load_base(model_uri)``: networks from runs, no pickle.

``load_base`` rebuilds a registered dense base model from its train run's ``base_model/``
folder (``model.json`` names the model, input shape and classes; ``weights.safetensors``).

A prune run logs ``config.json`` (its resolved config, with the model's input shape and
class count), ``weights.safetensors`` (the fine-tuned weights) and the files of its kind
of pruning (``Kind.files``: ``masks.safetensors`` for masks, ``structure.json`` for
channel removal); the kind that runs the run's strategy rebuilds the network from them
(``Kind.load``). Everything is safetensors or JSON, so nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from mlbench.kinds import kind_of
from mlbench.models import create_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


def build_pruned(folder: str | Path) -> nn.Module:
    """The pruned network from a folder holding a prune run's artifacts (``config.json``,
    ``weights.safetensors`` and its kind's files)."""
    folder = Path(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    return kind_of(str(config.get("strategy", ""))).load(folder, config).eval()


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
    kind = kind_of(str(strategy))  # what else to fetch: masks, a description, ...
    return build_pruned(download_run_files(run_id, (CONFIG_FILE, *kind.files, WEIGHTS_FILE),
                                           tracking_uri))


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
