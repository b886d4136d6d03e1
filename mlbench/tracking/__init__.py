"""MLflow tracking: the only package that imports mlflow.

``_tracker`` opens runs, logs and coordinates claims; further submodules (the tuner's
trial runs, the report's queries) add what their stage needs, importing mlflow here.
"""

from mlbench.tracking._follower import Follower
from mlbench.tracking._tracker import (
    BASE_HASH,
    CHECKPOINT_DIR,
    CHECKPOINT_EPOCH,
    CLAIM_SETTLE_S,
    CONFIG_HASH,
    GIT_COMMIT,
    HEARTBEAT,
    RESUMED_EPOCH,
    RESUMED_FROM,
    STAGE,
    STALE_AFTER_S,
    VERSION,
    WEIGHTS,
    WORKER,
    BaseModel,
    CellTaken,
    Tracker,
    check_reachable,
    is_alive,
    quiet,
    resolve_uri,
)

__all__ = [
    "BASE_HASH",
    "CHECKPOINT_DIR",
    "CHECKPOINT_EPOCH",
    "CLAIM_SETTLE_S",
    "CONFIG_HASH",
    "GIT_COMMIT",
    "HEARTBEAT",
    "RESUMED_EPOCH",
    "RESUMED_FROM",
    "STAGE",
    "STALE_AFTER_S",
    "VERSION",
    "WEIGHTS",
    "WORKER",
    "BaseModel",
    "CellTaken",
    "Follower",
    "Tracker",
    "check_reachable",
    "is_alive",
    "quiet",
    "resolve_uri",
]
