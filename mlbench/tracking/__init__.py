"""MLflow tracking: the only package that imports mlflow.

``_tracker`` opens runs, logs and coordinates claims; further submodules (the tuner's
trial runs, the report's queries) add what their stage needs, importing mlflow here.
"""

from mlbench.tracking._query import (
    RunRecords,
    download_artifacts,
    log_report,
    query_prune_runs,
    registered_bases,
    split_names,
)
from mlbench.tracking._tracker import (
    BASE_HASH,
    CLAIM_SETTLE_S,
    CONFIG_HASH,
    GIT_COMMIT,
    HEARTBEAT,
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
    "CLAIM_SETTLE_S",
    "CONFIG_HASH",
    "GIT_COMMIT",
    "HEARTBEAT",
    "STAGE",
    "STALE_AFTER_S",
    "VERSION",
    "WEIGHTS",
    "WORKER",
    "BaseModel",
    "CellTaken",
    "RunRecords",
    "Tracker",
    "check_reachable",
    "download_artifacts",
    "is_alive",
    "log_report",
    "query_prune_runs",
    "quiet",
    "registered_bases",
    "resolve_uri",
    "split_names",
]
