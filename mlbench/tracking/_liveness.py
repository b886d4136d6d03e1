"""No run stays RUNNING after its process died: an owner tag, a heartbeat, and a reaper.

Every run ``Tracker.run`` opens carries ``mlbench.owner`` (host, boot id, pid and the
process's start time) and ``mlbench.heartbeat`` (unix seconds), refreshed by one
background thread. Any later mlbench command on the store (and the report) marks FAILED
each RUNNING run whose owner is dead, with ``mlbench.failed_reason``:

- on the owner's own host (same boot), the process is checked: a run is dead when its
  pid is gone or belongs to a process started at another time (a reused pid). No clock
  is involved;
- after a reboot of the owner's host (another boot id), it is dead;
- from another host, it is dead when its heartbeat is older than ``grace_s`` (10
  minutes by default, 20 missed beats: generous, because this rests on clocks).
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from mlbench.tracking._owner import GRACE_S, dead_because, owner_tag

OWNER = "mlbench.owner"  # host|boot id|pid|process start (clock ticks since boot)
HEARTBEAT = "mlbench.heartbeat"  # unix seconds of the owner's last beat
FAILED_REASON = "mlbench.failed_reason"  # why mlbench marked a run FAILED
BEAT_S = 30.0


class Heartbeat:
    """One daemon thread refreshing ``mlbench.heartbeat`` on this process's open runs.

    A beat that fails (the server is away) is skipped: the runs' own requests report
    outages, and the owner tag keeps a same-host check exact meanwhile.
    """

    def __init__(self, client: Any, every_s: float = BEAT_S) -> None:  # noqa: ANN401
        self.client = client
        self.every_s = every_s
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        """Beat for ``run_id`` from now on."""
        with self._lock:
            self._runs.add(run_id)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mlbench-heartbeat",
                                            daemon=True)
            self._thread.start()

    def remove(self, run_id: str) -> None:
        """Stop beating for ``run_id`` (its run ended)."""
        with self._lock:
            self._runs.discard(run_id)

    def _loop(self) -> None:
        while not self._wake.wait(self.every_s):
            with self._lock:
                runs = sorted(self._runs)
            for run_id in runs:
                with contextlib.suppress(Exception):
                    self.client.set_tag(run_id, HEARTBEAT, f"{time.time():.0f}")


def reap(client: Any, link: Any, experiment_ids: Iterable[str],  # noqa: ANN401
         grace_s: float = GRACE_S) -> list[str]:
    """Mark FAILED every RUNNING run of ``experiment_ids`` whose owner is dead, saying so
    in one line each; return their ids."""
    ids = list(experiment_ids)
    if not ids:
        return []
    runs = link.call(client.search_runs, ids, "attributes.status = 'RUNNING'",
                     max_results=5000)
    now, dead = time.time(), []
    for run in runs:
        owner = run.data.tags.get(OWNER)
        reason = dead_because(owner, run.data.tags.get(HEARTBEAT), now, grace_s) \
            if owner else None
        if reason is None:
            continue
        link.call(client.set_tag, run.info.run_id, FAILED_REASON, reason[:500])
        link.call(client.set_terminated, run.info.run_id, status="FAILED")
        stage = run.data.tags.get("mlbench.stage", "run")
        print(f"mlbench: {stage} run {run.info.run_name} ({run.info.run_id}) was left RUNNING: "
              f"{reason}; marked FAILED", file=sys.stderr, flush=True)
        dead.append(run.info.run_id)
    return dead


def reap_store(uri: str) -> list[str]:
    """``reap`` for a reader of the store (the report): on a local sqlite store the RUNNING
    runs are read with one SQL query, and MLflow is asked only if one of them is dead."""
    from mlbench.tracking._sqlite_runs import sqlite_path

    path = sqlite_path(uri)
    if path is not None:
        sql = ("SELECT r.run_uuid, o.value, (SELECT h.value FROM tags h WHERE h.run_uuid = "
               "r.run_uuid AND h.key = ?) FROM runs r JOIN tags o ON o.run_uuid = r.run_uuid "
               "AND o.key = ? WHERE r.status = 'RUNNING' AND r.lifecycle_stage = 'active'")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                rows = db.execute(sql, (HEARTBEAT, OWNER)).fetchall()
        except sqlite3.Error:
            rows = None
        now = time.time()
        if rows is not None and not any(dead_because(o, h, now) for _, o, h in rows):
            return []
    from mlflow import MlflowClient

    from mlbench.tracking._sender import Link

    client = MlflowClient(uri)
    link = Link(uri)
    return reap(client, link, [e.experiment_id for e in link.call(client.search_experiments)])


__all__ = ["FAILED_REASON", "HEARTBEAT", "OWNER", "Heartbeat", "dead_because", "owner_tag",
           "reap", "reap_store"]
