"""MLflow tracking: the only package that imports mlflow.

One module per job: ``_runs`` opens runs and logs (through ``_sender``, which rides out
server outages), ``_registry`` finds and registers base models, ``_checkpoints`` keeps
training checkpoints, ``_trials`` holds the tuner's runs and ``_query`` reads runs back
for the report. ``Follower`` stands in for the tracker on torchrun's other ranks.
"""

from mlbench.tracking._checkpoints import Checkpoints, checkpoint_key
from mlbench.tracking._follower import Follower
from mlbench.tracking._query import (
    RunRecords,
    download_artifacts,
    log_report,
    query_prune_runs,
    registered_bases,
    split_names,
)
from mlbench.tracking._registry import (
    BASE_MODEL,
    MODEL_JSON,
    PIP_REQUIREMENTS,
    WEIGHTS_DIR_TAG,
    BaseModel,
    Registry,
    describe_version,
    download_run_files,
    log_pruned_model,
)
from mlbench.tracking._runs import Tracker, check_reachable, quiet, resolve_uri
from mlbench.tracking._sender import Link
from mlbench.tracking._tags import (
    BASE_HASH,
    CHECKPOINT_DIR,
    CHECKPOINT_EPOCH,
    CHECKPOINT_KEY,
    CONFIG_HASH,
    GIT_COMMIT,
    RESUMED_EPOCH,
    RESUMED_FROM,
    SET_ASIDE,
    STAGE,
    STUDY,
    TRIAL_NUMBER,
    VERSION,
    WEIGHTS,
    WORKER,
)
from mlbench.tracking._trials import (
    SEARCH_SPACE_HASH,
    STORAGE,
    TRIAL_STATE,
    TUNE_RUN_ID,
    TUNED,
    TrialLog,
    TunedTracker,
    trial_run,
    tune_tags,
    tuned_hash,
)

__all__ = [
    "BASE_HASH",
    "CHECKPOINT_DIR",
    "CHECKPOINT_EPOCH",
    "CHECKPOINT_KEY",
    "CONFIG_HASH",
    "GIT_COMMIT",
    "RESUMED_EPOCH",
    "RESUMED_FROM",
    "SEARCH_SPACE_HASH",
    "SET_ASIDE",
    "STAGE",
    "STORAGE",
    "STUDY",
    "TRIAL_NUMBER",
    "TRIAL_STATE",
    "TUNED",
    "TUNE_RUN_ID",
    "VERSION",
    "WEIGHTS",
    "WORKER",
    "BASE_MODEL",
    "MODEL_JSON",
    "PIP_REQUIREMENTS",
    "WEIGHTS_DIR_TAG",
    "BaseModel",
    "Checkpoints",
    "Follower",
    "Link",
    "Registry",
    "RunRecords",
    "Tracker",
    "TrialLog",
    "TunedTracker",
    "check_reachable",
    "checkpoint_key",
    "describe_version",
    "download_artifacts",
    "download_run_files",
    "log_pruned_model",
    "log_report",
    "query_prune_runs",
    "quiet",
    "registered_bases",
    "resolve_uri",
    "split_names",
    "trial_run",
    "tune_tags",
    "tuned_hash",
]
