"""Records the pipeline and the tracker pass between them; no mlflow needed to hold one.

What the training process computes or writes for the tracker lives here too (a
checkpoint's key, a base model's folder), so that a command whose Tracker runs in a
tracking agent (``_agent``) never imports mlflow itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbench.tracking._tags import BASE_MODEL, MODEL_JSON, WEIGHTS

if TYPE_CHECKING:  # the report reads runs without torch
    from torch import Tensor


@dataclass(frozen=True)
class BaseModel:
    """A registered dense base model: the run that made it, its registered name and
    version (None where it is not registered, or on a torchrun rank other than 0)."""

    run_id: str
    name: str
    version: str | None


def checkpoint_key(config_hash: str, state: Mapping[str, Tensor]) -> str:
    """``config_hash`` plus every tensor's name and shape: what a checkpoint must fit."""
    shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(state.items()))
    return hashlib.sha256(f"{config_hash}|{shapes}".encode()).hexdigest()[:16]


def write_base_folder(parent: Path, weights: dict[str, Any], note: dict[str, Any]) -> Path:
    """Write ``base_model/`` (safetensors ``weights`` and ``model.json``) under ``parent``;
    return it (``Tracker.log_base_files`` logs it)."""
    from safetensors.torch import save_file

    folder = parent / BASE_MODEL
    folder.mkdir()
    save_file(weights, str(folder / WEIGHTS))
    (folder / MODEL_JSON).write_text(json.dumps(note, indent=2))
    return folder


__all__ = ["BaseModel", "checkpoint_key", "write_base_folder"]
