"""Reading runs back for the report: one paged query, the registry, a few artifacts.

Everything here returns plain Python data (dicts, lists, paths), so the report package
never touches MLflow objects. Speed matters with thousands of runs: every prune run of
every experiment comes from one paged ``search_runs`` query (no per-run calls), and
artifacts are fetched only for the few runs that need them.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlbench.config import TrackingConfig
from mlbench.errors import ConfigError
from mlbench.tracking._connect import check_reachable, resolve_uri
from mlbench.tracking._liveness import reap_store
from mlbench.tracking._runs import Tracker
from mlbench.tracking._sqlite_runs import local_artifacts, read_bases, read_runs, sqlite_path
from mlbench.tracking._tags import BASE_HASH, STAGE

PAGE = 5000  # runs per search_runs page (the sqlite store allows up to 50,000)


@dataclass
class RunRecords:
    """What the store holds for a report: runs as flat dicts, and the registered bases.

    ``runs``: one dict per run with ``run_id``, ``run_name``, ``experiment``, ``status``,
    ``start_time``, ``end_time`` (ms), ``params``, ``metrics`` and ``tags`` (dicts).
    ``bases``: one dict per registered version of a ``mlbench-*`` model with ``name``,
    ``version``, ``run_id`` and ``base_hash``.
    """

    uri: str
    experiments: dict[str, str]  # id -> name
    runs: list[dict[str, Any]] = field(default_factory=list)
    bases: list[dict[str, str]] = field(default_factory=list)


def split_names(names: Iterable[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (repeatable and comma-separated), in order."""
    out = [n.strip() for item in names for n in item.split(",")]
    return list(dict.fromkeys(n for n in out if n))


def query_prune_runs(
    tracking_uri: str | None, experiments: Sequence[str], filter_string: str = ""
) -> RunRecords:
    """Every ``prune`` run of the named experiments (any status), plus the registry.

    No names: every experiment of the store.

    ``filter_string`` is an MLflow search filter ANDed with the stage tag, e.g.
    ``"params.dataset = 'cifar10'"``. Raises ConfigError for an unknown experiment, a
    filter MLflow rejects, or an unreachable server.
    """
    uri = resolve_uri(tracking_uri)
    check_reachable(uri)
    _check_store_exists(uri)
    reap_store(uri)  # issue 20: a run whose process died is FAILED, never shown as live
    fast = _from_sqlite(uri, experiments) if not filter_string.strip() else None
    if fast is not None:
        return fast
    client = MlflowClient(uri)
    ids = _experiment_ids(client, uri, split_names(experiments))
    query = f"tags.`{STAGE}` = 'prune'"
    if filter_string.strip():
        query += f" and {filter_string.strip()}"
    records = RunRecords(uri=uri, experiments=ids)
    token = None
    while True:
        try:
            page = client.search_runs(list(ids), query, max_results=PAGE, page_token=token)
        except MlflowException as exc:
            raise ConfigError(f"--filter {filter_string!r}: {exc.message}") from None
        records.runs += [_record(run, ids) for run in page]
        token = page.token
        if not token:
            break
    records.bases = registered_bases(client)
    return records


def _from_sqlite(uri: str, experiments: Sequence[str]) -> RunRecords | None:
    """The records read straight from a local sqlite store, or None to ask MLflow."""
    path = sqlite_path(uri)
    names = split_names(experiments)
    if path is None:
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            found = dict(db.execute(
                "SELECT name, experiment_id FROM experiments WHERE lifecycle_stage = 'active' "
                "ORDER BY experiment_id").fetchall())
    except sqlite3.Error:
        return None
    if not set(names) <= set(found):
        return None  # MLflow's path names the unknown experiment
    ids = {str(found[n]): n for n in names or found}  # no names: every active experiment
    runs = read_runs(path, ids, STAGE, "prune")
    bases = read_bases(path, BASE_HASH)
    if runs is None or bases is None:
        return None
    return RunRecords(uri=uri, experiments=ids, runs=runs, bases=bases)


def _check_store_exists(uri: str) -> None:
    """Reading must not create: MLflow makes a new empty sqlite file for a mistyped path."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :].split("?")[0])
        if not path.is_file():
            raise ConfigError(f"--tracking-uri {uri}: no such sqlite file {path}")


def _experiment_ids(client: MlflowClient, uri: str, names: list[str]) -> dict[str, str]:
    if not names:  # every active experiment: wherever `mlflow run` and the CLI put runs
        return {e.experiment_id: e.name for e in client.search_experiments()}
    ids = {}
    for name in names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None or experiment.lifecycle_stage != "active":
            known = sorted(e.name for e in client.search_experiments())
            raise ConfigError(
                f"unknown experiment {name!r} in {uri}; experiments there: "
                f"{', '.join(known) or 'none'}"
            )
        ids[experiment.experiment_id] = name
    return ids


def _record(run: Any, experiments: Mapping[str, str]) -> dict[str, Any]:
    info = run.info
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment": experiments.get(info.experiment_id, info.experiment_id),
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
    }


def registered_bases(client: MlflowClient) -> list[dict[str, str]]:
    """Every registered version of an ``mlbench-<dataset>-<model>`` base model."""
    out, token = [], None
    while True:
        page = client.search_model_versions(
            "name LIKE 'mlbench-%'", max_results=1000, page_token=token
        )
        out += [
            {
                "name": mv.name,
                "version": str(mv.version),
                "run_id": mv.run_id,
                "base_hash": mv.tags.get(BASE_HASH, ""),
            }
            for mv in page
        ]
        token = page.token
        if not token:
            return out


def download_artifacts(
    tracking_uri: str, run_ids: Sequence[str], artifact: str, folder: Path,
    *, missing_ok: bool = False,
) -> dict[str, Path]:
    """One artifact of each run: where it lies in a local store, else fetched into ``folder``.

    A ConfigError if one is missing; with ``missing_ok`` such a run is left out of the
    answer (an artifact that older runs did not log).
    """
    path = sqlite_path(resolve_uri(tracking_uri))
    local = local_artifacts(path, list(run_ids), artifact, missing_ok) if path else None
    if local is not None:  # a local store's files, read where they lie
        return local
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(resolve_uri(tracking_uri))
    out = {}
    for run_id in run_ids:
        target = Path(tempfile.mkdtemp(prefix=f"{run_id[:8]}-", dir=folder))
        try:
            out[run_id] = Path(client.download_artifacts(run_id, artifact, str(target)))
        except Exception as exc:  # noqa: BLE001 - every store raises its own kind
            if missing_ok:
                continue
            raise ConfigError(f"run {run_id} has no artifact {artifact!r}: {exc}") from None
    return out


def log_report(
    tracking_uri: str | None,
    experiment: str | None,
    folder: Path,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    name: str = "report",
) -> str:
    """Log ``folder``'s files as the artifacts of a new ``report`` run; return its id.

    Under ``mlflow run -e report`` the run MLflow opened is used instead.
    """
    tracker = Tracker(TrackingConfig(tracking_uri=tracking_uri, experiment=experiment))
    with tracker.run("report", name) as run_id:
        tracker.log_params(params)
        tracker.log_metrics(metrics)
        mlflow.log_artifacts(str(folder))
    return run_id
