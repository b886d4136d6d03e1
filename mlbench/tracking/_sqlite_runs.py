"""Reading a local sqlite store's runs in three SQL queries, for reports over many runs.

MLflow's ``search_runs`` builds an ORM object per param, metric and tag: over 1,000 runs
that is most of a report's time. For a local ``sqlite:///`` store and no search filter,
the same records come from MLflow's own tables (runs, params, latest_metrics, tags,
model_versions) read only, with the semantics of ``search_runs``: active runs of the
given experiments, latest metric values, NaN where MLflow stored one. Anything unexpected
(another schema, a locked file) returns None and the caller uses MLflow.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI, or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?")[0])


def read_runs(path: Path, experiments: Mapping[str, str], tag: str, value: str
              ) -> list[dict[str, Any]] | None:
    """Active runs of ``experiments`` (id -> name) tagged ``tag = value``, as run records."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return _read(db, experiments, tag, value)
    except sqlite3.Error:
        return None


def read_bases(path: Path, base_hash_tag: str) -> list[dict[str, str]] | None:
    """Every registered version of an ``mlbench-*`` model (see ``registered_bases``)."""
    sql = ("SELECT mv.name, mv.version, mv.run_id, "
           "(SELECT value FROM model_version_tags t WHERE t.name = mv.name AND "
           "t.version = mv.version AND t.key = ?) FROM model_versions mv "
           "WHERE mv.name LIKE 'mlbench-%' AND mv.current_stage != 'Deleted_Internal' "
           "ORDER BY mv.name, mv.version")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute(sql, (base_hash_tag,)).fetchall()
    except sqlite3.Error:
        return None
    return [{"name": n, "version": str(v), "run_id": r or "", "base_hash": h or ""}
            for n, v, r, h in rows]


def _read(db: sqlite3.Connection, experiments: Mapping[str, str], tag: str, value: str
          ) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(experiments))
    chosen = (f"SELECT r.run_uuid FROM runs r JOIN tags s ON s.run_uuid = r.run_uuid "
              f"WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({marks}) "
              f"AND s.key = ? AND s.value = ?")
    args = (*[int(i) for i in experiments], tag, value)
    runs: dict[str, dict[str, Any]] = {}
    for run_id, name, status, start, end, exp in db.execute(
            "SELECT run_uuid, name, status, start_time, end_time, experiment_id FROM runs "
            f"WHERE run_uuid IN ({chosen}) ORDER BY start_time DESC, run_uuid", args):
        runs[run_id] = {"run_id": run_id, "run_name": name, "experiment":
                        experiments.get(str(exp), str(exp)), "status": status,
                        "start_time": start, "end_time": end, "params": {}, "metrics": {},
                        "tags": {}}
    for table, field, columns in (("params", "params", "key, value"),
                                  ("tags", "tags", "key, value"),
                                  ("latest_metrics", "metrics", "key, value, is_nan")):
        for run_id, key, val, *nan in db.execute(
                f"SELECT run_uuid, {columns} FROM {table} WHERE run_uuid IN ({chosen})", args):
            if field == "metrics":
                val = math.nan if nan[0] else float(val)
            runs[run_id][field][key] = val
    return list(runs.values())


def local_artifacts(path: Path, run_ids: list[str], artifact: str,
                    missing_ok: bool = False) -> dict[str, Path] | None:
    """Where ``artifact`` of each run lies, for runs whose artifact store is a local folder.

    None unless every run's artifact URI is a local path (or ``file://``) holding it;
    with ``missing_ok`` a run without the file is left out instead.
    """
    marks = ",".join("?" * len(run_ids))
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = dict(db.execute(f"SELECT run_uuid, artifact_uri FROM runs WHERE run_uuid "
                                   f"IN ({marks})", run_ids).fetchall())
    except sqlite3.Error:
        return None
    out = {}
    for run_id in run_ids:
        root = rows.get(run_id) or ""
        if root.startswith("file://"):
            root = root[len("file://"):]
        if "://" in root or not root:
            return None
        file = Path(root) / artifact
        if not file.is_file():
            if missing_ok:
                continue
            return None
        out[run_id] = file
    return out
