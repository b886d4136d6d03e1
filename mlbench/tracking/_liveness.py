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
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OWNER = "mlbench.owner"  # host|boot id|pid|process start (clock ticks since boot)
HEARTBEAT = "mlbench.heartbeat"  # unix seconds of the owner's last beat
FAILED_REASON = "mlbench.failed_reason"  # why mlbench marked a run FAILED
BEAT_S = 30.0
GRACE_S = float(os.environ.get("MLBENCH_RUN_GRACE", "600"))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _started(pid: int) -> str:
    """When process ``pid`` started (``/proc/PID/stat`` field 22), '' if unknown, None if
    there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "gone"
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tag(pid: int | None = None) -> str:
    """This process as an owner: ``host|boot id|pid|start``."""
    pid = pid or os.getpid()
    started = _started(pid)
    return f"{socket.gethostname()}|{_boot_id()}|{pid}|{'' if started == 'gone' else started}"


def dead_because(owner: str, heartbeat: str | None, now: float, grace_s: float = GRACE_S
                 ) -> str | None:
    """Why the owner of a RUNNING run is dead, or None while it may be alive."""
    try:
        host, boot, pid_text, started = owner.split("|")
        pid = int(pid_text)
    except ValueError:
        return None  # not ours to judge
    if host == socket.gethostname():
        if boot and _boot_id() and boot != _boot_id():
            return f"its host {host} rebooted since process {pid} ran it"
        now_started = _started(pid)
        if now_started == "gone":
            return f"process {pid} on {host} that ran it is gone"
        if started and now_started and now_started != started:
            return f"process {pid} on {host} that ran it is gone (the pid is another's now)"
        if now_started == "" and not _pid_alive(pid):
            return f"process {pid} on {host} that ran it is gone"
        return None
    try:
        beat = float(heartbeat or "")
    except ValueError:
        return None
    if now - beat > grace_s:
        return (f"no heartbeat from {host} (process {pid}) for {now - beat:.0f} s "
                f"(grace {grace_s:.0f} s)")
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
