"""The tag and artifact names of DESIGN.md's tracking schema that mlbench sets itself."""

from __future__ import annotations

from mlbench.names import BASE_HASH, CONFIG_HASH, GIT_COMMIT, STAGE, STUDY, TRIAL_NUMBER, VERSION

WEIGHTS = "weights.safetensors"
BASE_MODEL = "base_model"  # a base run's folder: weights.safetensors and model.json
MODEL_JSON = "model.json"  # what rebuilds the network: model name, input shape, classes
WEIGHTS_DIR_TAG = "mlbench.weights_dir"  # on a model version: the run's folder of weights
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_KEY = "mlbench.checkpoint_key"  # config hash + the model's tensor shapes
CHECKPOINT_EPOCH = "mlbench.checkpoint_epoch"  # the epoch of the run's last checkpoint
SET_ASIDE = "mlbench.checkpoint_set_aside"  # why a checkpoint was not resumed from
RESUMED_FROM = "mlbench.resumed_from"  # the interrupted run this one continued
RESUMED_EPOCH = "mlbench.resumed_epoch"
WORKER = "mlbench.worker"  # host:pid of the process that did a run (a record, nothing more)

__all__ = [
    "BASE_HASH", "BASE_MODEL", "CHECKPOINT_DIR", "CHECKPOINT_EPOCH", "CHECKPOINT_KEY",
    "CONFIG_HASH", "GIT_COMMIT", "MODEL_JSON", "RESUMED_EPOCH", "RESUMED_FROM", "SET_ASIDE",
    "STAGE", "STUDY", "TRIAL_NUMBER", "VERSION", "WEIGHTS", "WEIGHTS_DIR_TAG", "WORKER",
]
