"""Optuna storages from ``--storage``: a journal file (default), sqlite, PostgreSQL/MySQL.

The default is a journal file beside the MLflow store (``optuna.journal`` in the folder of
``mlflow.db``): it needs no setup and takes many worker processes on one machine. For
several machines, PostgreSQL (or Optuna's gRPC proxy in front of it).

Every storage gets a heartbeat: a worker records one every ``heartbeat_s`` seconds while
a trial runs (from a background thread); a RUNNING trial whose heartbeat is older than
``grace_s`` (default: twice the interval) is failed by the next worker that looks, and
re-queued with the same parameters (``RetryHeartbeatStaleTrialCallback``). Optuna's RDB
storage has this built in; for journal files ``_HeartbeatJournal`` adds it.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat  # the contract fail_stale_trials uses
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from mlbench.errors import ConfigError

# Seconds between heartbeats of a running trial; a trial is failed after two missed.
HEARTBEAT_S = int(os.environ.get("MLBENCH_TRIAL_HEARTBEAT", "30"))
JOURNAL = "optuna.journal"  # the default storage's file name, beside the MLflow store
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
_HELP = ("use sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB or journal:PATH "
         "(a journal file for many workers)")
_BEAT = "mlbench:heartbeat"


@dataclass(frozen=True)
class StorageSpec:
    """A parsed ``--storage``: where the studies live and how to show it in logs."""

    kind: str  # "rdb" or "journal"
    url: str  # an SQLAlchemy URL with absolute sqlite paths, or the journal file's path
    display: str  # url with any password hidden: what is logged and printed

    def dashboard_arg(self) -> str:
        """What to pass to ``optuna-dashboard`` to browse these studies."""
        return self.url if self.kind == "journal" else self.display


def default_storage(tracking_uri: str | None) -> str:
    """``journal:`` + a file beside the MLflow store (``tracking_uri`` absolute), or in the
    current folder when the store is a server."""
    uri = tracking_uri or ""
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
    elif uri.startswith("file://"):
        folder = Path(uri[len("file://"):])
    elif uri and "://" not in uri:
        folder = Path(uri)
    else:
        folder = Path.cwd()
    return f"journal:{folder.resolve() / JOURNAL}"


def parse_storage(text: str | None, tracking_uri: str | None = None) -> StorageSpec:
    """``--storage`` -> StorageSpec; empty means ``default_storage(tracking_uri)``.

    Example:
        >>> parse_storage("journal:/tmp/studies.log").kind
        'journal'
    """
    text = (text or "").strip() or default_storage(tracking_uri)
    if text.startswith("journal:"):
        path = Path(text[len("journal:") :].removeprefix("//")).expanduser().resolve()
        return StorageSpec("journal", str(path), f"journal:{path}")
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme.split("+")[0] not in _RDB_SCHEMES:
        raise ConfigError(f"--storage {text}: unknown storage scheme {scheme or text!r}; {_HELP}")
    if scheme == "postgres":  # SQLAlchemy knows only the long name
        text = "postgresql" + text[len("postgres") :]
    if text.startswith("postgresql://") and _has("psycopg2") and not _has("psycopg"):
        text = "postgresql+psycopg2://" + text[len("postgresql://") :]  # the driver there is
    if scheme == "sqlite" and text != "sqlite://" and not text.startswith("sqlite:////"):
        text = "sqlite:///" + str(Path(text[len("sqlite:///") :]).expanduser().resolve())
    from sqlalchemy.engine import make_url

    try:
        display = make_url(text).render_as_string(hide_password=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad input
        raise ConfigError(f"--storage {text}: not a database URL ({exc}); {_HELP}") from None
    return StorageSpec("rdb", text, display)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def open_storage(spec: StorageSpec, heartbeat_s: int = HEARTBEAT_S, grace_s: int | None = None,
                 max_retry: int | None = None) -> optuna.storages.BaseStorage:
    """Connect to the storage (creating its tables, never a study) with a heartbeat.

    A trial without a heartbeat for ``grace_s`` seconds (default ``2 * heartbeat_s``) is
    failed and re-queued, at most ``max_retry`` times (None: always). Raises
    ConfigError when the database cannot be reached or the file not written.
    """
    grace_s = grace_s or 2 * heartbeat_s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        if spec.kind == "journal":
            if not Path(spec.url).parent.is_dir():
                raise ConfigError(f"--storage {spec.display}: no folder {Path(spec.url).parent}")
            try:
                backend = JournalFileBackend(spec.url)
            except OSError as exc:
                raise ConfigError(f"--storage {spec.display}: {exc.strerror}") from None
            return _HeartbeatJournal(backend, heartbeat_s, grace_s, retry)
        if spec.url.startswith("sqlite:///") and not Path(spec.url[10:]).parent.is_dir():
            raise ConfigError(f"--storage {spec.display}: no folder {Path(spec.url[10:]).parent}")
        sqlite = spec.url.startswith("sqlite")
        kwargs = {"connect_args": {"timeout": 60} if sqlite else {"connect_timeout": 5}}
        try:
            storage = _connect(spec.url, kwargs, heartbeat_s, grace_s, retry)
            if sqlite:
                _serialize(storage.engine)
            return storage
        except ImportError as exc:  # Optuna re-raises the driver's ModuleNotFoundError
            missing = getattr(exc.__cause__, "name", None) or exc
            raise ConfigError(
                f"--storage {spec.display}: its database driver is not installed "
                f"({missing}); for PostgreSQL: pip install 'psycopg[binary]'"
            ) from None
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors have no common base here
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise ConfigError(f"--storage {spec.display}: cannot reach the database ({reason})")\
                from None


def _connect(url: str, kwargs: dict[str, Any], heartbeat_s: int, grace_s: int,
             retry: RetryHeartbeatStaleTrialCallback, tries: int = 4) -> RDBStorage:
    """RDBStorage, tried again after a short backoff: workers that start together on a
    fresh database race to create its tables, and all but one fail the first time."""
    for attempt in range(tries):
        try:
            return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat_s,
                              grace_period=grace_s, heartbeat_stale_trial_callback=retry)
        except ImportError:
            raise
        except Exception:
            if attempt == tries - 1:
                raise
            time.sleep(1.0 + attempt)  # backoff
    raise AssertionError("unreachable")


def _serialize(engine: Any) -> None:
    """SQLite transactions that take the write lock when they begin (``BEGIN IMMEDIATE``).

    pysqlite starts a transaction only at its first write, so two processes can both read
    a trial as WAITING and both move it to RUNNING; with the lock taken at BEGIN, the
    read and the write of one hand-out are one transaction, as on PostgreSQL.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the listeners: replaced


class _HeartbeatJournal(JournalStorage, BaseHeartbeat):
    """A journal storage whose running trials record heartbeats as system attributes."""

    def __init__(self, backend: JournalFileBackend, heartbeat_s: int, grace_s: int,
                 callback: RetryHeartbeatStaleTrialCallback) -> None:
        super().__init__(backend)
        self._heartbeat_s = heartbeat_s
        self._grace_s = grace_s
        self._callback = callback

    def record_heartbeat(self, trial_id: int) -> None:
        """Stamp the trial with the time now (one journal line)."""
        self.set_trial_system_attr(trial_id, _BEAT, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        return [
            t._trial_id
            for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
            if now - _last_beat(t) > self._grace_s
        ]

    def get_heartbeat_interval(self) -> int:
        """Seconds between heartbeats."""
        return self._heartbeat_s

    def get_heartbeat_stale_trial_callback(self) -> RetryHeartbeatStaleTrialCallback:
        """Re-queue a failed stale trial with its parameters."""
        return self._callback


def _last_beat(trial: FrozenTrial) -> float:
    """The latest sign of life: its last heartbeat, or its start (a retried trial carries
    the dead trial's old heartbeat until its own first one)."""
    start = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
    return max(float(trial.system_attrs.get(_BEAT, 0.0)), start)
