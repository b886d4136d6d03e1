"""MLflow tracking: the only package that imports mlflow.

One module per job: ``_runs`` opens runs and logs (through ``_sender``, which rides out
server outages), ``_registry`` finds and registers base models, ``_checkpoints`` keeps
training checkpoints, ``_trials`` holds the tuner's runs and ``_query`` reads runs back
for the report, ``_liveness`` marks FAILED the runs whose process died, ``_outbox`` keeps
what waits to be sent on local disk, ``_resend`` sends what a stopped process left there.
``Follower`` stands in for the tracker on torchrun's other ranks. ``_agent`` runs a
command's Tracker in a process of its own (the tracking agent) and ``_remote`` is the
command's side of it (``Agent``, ``RemoteTracker``), over ``_wire``'s socket pair.

mlflow (and pandas, which it imports) loads when a name of those modules is first used,
not with this package: tag names, ``resolve_uri``, ``check_reachable``, ``quiet``,
``BaseModel``, ``checkpoint_key``, ``Follower`` and ``Agent`` cost nothing, so a command
reads its data before it pays for mlflow, and a command whose Tracker runs in a tracking
agent (``_agent``, reached through ``_remote``) never pays for it in its own process.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlbench.tracking._connect import check_reachable, has_password, quiet, redact, resolve_uri
from mlbench.tracking._follower import Follower
from mlbench.tracking._liveness import FAILED_REASON, HEARTBEAT, OWNER
from mlbench.tracking._records import BaseModel, checkpoint_key, write_base_folder
from mlbench.tracking._remote import Agent, RemoteTracker, agent_wanted
from mlbench.tracking._tags import (
    BASE_HASH,
    BASE_MODEL,
    CHECKPOINT_DIR,
    CHECKPOINT_EPOCH,
    CHECKPOINT_KEY,
    CONFIG_HASH,
    GIT_COMMIT,
    MODEL_JSON,
    RESUMED_EPOCH,
    RESUMED_FROM,
    SET_ASIDE,
    STAGE,
    STUDY,
    TRIAL_NUMBER,
    VERSION,
    WEIGHTS,
    WEIGHTS_DIR_TAG,
    WORKER,
)

# What imports mlflow, by module: loaded on first use (PEP 562).
_LAZY = {
    "_checkpoints": ("Checkpoints",),
    "_doors": ("discard_project_run", "mark_training_experiment"),
    "_query": ("RunRecords", "download_artifacts", "log_report", "query_prune_runs",
               "registered_bases", "split_names"),
    "_registry": ("PIP_REQUIREMENTS", "Registry", "describe_version",
                  "download_base_folder", "download_run_files", "log_base_folder",
                  "log_pruned_model"),
    "_runs": ("Tracker",),
    "_grant": ("grant",),
    "_resend": ("resend", "send_left"),
    "_sender": ("Link", "given_up"),
    "_trials": ("SEARCH_SPACE_HASH", "STORAGE", "TRIAL_STATE", "TUNE_RUN_ID", "TUNED",
                "TrialLog", "TunedTracker", "trial_run", "tune_tags", "tuned_hash"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whatever the module defines
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [  # noqa: PLE0605 - the lazy names resolve through __getattr__
    "BASE_HASH", "BASE_MODEL", "CHECKPOINT_DIR", "CHECKPOINT_EPOCH", "CHECKPOINT_KEY",
    "CONFIG_HASH", "GIT_COMMIT", "MODEL_JSON", "RESUMED_EPOCH", "RESUMED_FROM", "SET_ASIDE",
    "STAGE", "STUDY", "TRIAL_NUMBER", "VERSION", "WEIGHTS", "WEIGHTS_DIR_TAG", "WORKER",
    "FAILED_REASON", "HEARTBEAT", "OWNER", "BaseModel", "Follower", "check_reachable",
    "checkpoint_key", "write_base_folder", "has_password", "quiet", "redact", "resolve_uri",
    "Agent", "RemoteTracker", "agent_wanted", *sorted(_WHERE),
]
