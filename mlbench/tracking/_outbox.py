"""What waits to be sent to the tracking server, on local disk: every request the
background sender queues, written down when queued, so that neither a long outage nor a
kill -9 during one loses a metric.

An outbox is one folder per tracker (under ``$MLBENCH_OUTBOX``, else
``~/.cache/mlbench/outbox``):

- ``outbox.json``: the tracking URI (no password) and the owner (host, boot id, pid,
  process start: ``_owner.owner_tag``);
- ``ops.jsonl``: the journal, append-only JSON lines. ``{"seq": n, ...}`` is one queued
  request (run id, metrics with their client timestamps and steps, tags, a file and its
  artifact folder); ``{"sent": [n, ...]}`` says those were delivered (or replaced by a
  newer checkpoint). Each line is one ``write``, so a kill -9 loses none; the journal
  is fsync'd at most once a second (a power cut loses at most that second);
- ``<n>/<name>``: a copy of a queued file, until it is uploaded.

Once everything queued is sent the journal is removed, and the folder when the process
exits. What a dead process left is sent
by the next mlbench command on the same store from this host (``_resend.send_left``) or
by ``python -m mlbench resend FOLDER``; sending a request twice is harmless (a metric is
identified by key, value, timestamp and step, so MLflow keeps one; a tag or an artifact
is overwritten), so a request delivered just before the kill is not duplicated.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbench.tracking._owner import dead_because, owner_tag

OPS = "ops.jsonl"
META = "outbox.json"
LOCK = "sending.lock"  # held by whoever sends a dead process's outbox
FSYNC_S = 1.0  # the journal reaches the disk at most this long after a request is queued


@dataclass
class Op:
    """One request for a run: a file to upload (``path``, into ``artifact_dir``), then
    ``metrics`` and ``tags`` in one batch. ``slot`` names a file a newer one replaces;
    ``seqs`` are the journal numbers it carries (several once batches are merged)."""

    run_id: str
    metrics: list[Any] = field(default_factory=list)  # mlflow.entities.Metric
    tags: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    artifact_dir: str | None = None
    slot: str | None = None
    seqs: list[int] = field(default_factory=list)


def outbox_root() -> Path:
    """Where outboxes are made: ``$MLBENCH_OUTBOX``, else ``~/.cache/mlbench/outbox``."""
    given = os.environ.get("MLBENCH_OUTBOX")
    return Path(given) if given else Path.home() / ".cache" / "mlbench" / "outbox"


class Outbox:
    """This process's folder of requests (and files) queued and not yet delivered.

    Args:
        folder: where; a new folder under ``outbox_root()`` by default.
        uri: the tracking URI the requests are for (written down without a password).
    """

    def __init__(self, folder: Path | None = None, uri: str = "") -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # one folder per outbox: several trackers in one process (a sweep's, a test's)
        # must never number their files into the same folder
        unique = f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.folder = folder or outbox_root() / unique
        self.uri = uri
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._unsent: set[int] = set()
        self._journal: int | None = None  # an O_APPEND descriptor of ops.jsonl
        self._synced = 0.0
        self._made = False  # the folder and outbox.json were made
        weakref.finalize(self, _forget, self.folder)  # runs at exit too

    def queue(self, op: Op, path: Path | None = None) -> Op:
        """Write ``op`` down (with a copy of ``path``, which the caller may delete now)."""
        if path is not None:
            with self._lock:  # never while ``sent`` removes the (empty) folder
                self._ready()
                slot = self.folder / f"f{next(self._numbers)}"
                slot.mkdir()
            op.path = Path(shutil.copy2(path, slot / Path(path).name))
        with self._lock:
            op.seqs = [next(self._numbers)]
            self._append({"seq": op.seqs[0], **_record(op, self.folder)})
            self._unsent.add(op.seqs[0])
        return op

    def sent(self, op: Op) -> None:
        """``op`` is delivered (or replaced by a newer one): never send it again."""
        with self._lock:
            if op.seqs:
                self._append({"sent": op.seqs})
                self._unsent.difference_update(op.seqs)
            if op.path is not None and op.path.parent.parent == self.folder:
                shutil.rmtree(op.path.parent, ignore_errors=True)
            if not self._unsent:
                self._remove()

    def describe(self) -> str:
        """One sentence: what is kept where and how to send it on ('' if nothing is)."""
        if not self._unsent:
            return ""
        return (f"The work done is kept in {self.folder}; send it on with `python -m mlbench "
                f"resend {self.folder}` (with --tracking-uri if not $MLFLOW_TRACKING_URI).")

    def _ready(self) -> None:
        """The folder and its ``outbox.json`` exist (under the lock)."""
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / f".{META}.tmp"
            meta.write_text(json.dumps({"uri": self.uri, "owner": owner_tag()}))
            meta.replace(self.folder / META)
            self._made = True

    def _append(self, record: dict[str, Any]) -> None:
        """One journal line in one ``write`` (under the lock); fsync'd in batches."""
        if self._journal is None:
            self._ready()
            self._journal = os.open(self.folder / OPS, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                    0o600)
        os.write(self._journal, (json.dumps(record) + "\n").encode())
        if time.monotonic() - self._synced > FSYNC_S:
            os.fsync(self._journal)
            self._synced = time.monotonic()

    def _remove(self) -> None:
        """Nothing is left to send: the journal goes (under the lock). The folder stays
        while the process lives (removing a folder costs milliseconds on some file
        systems: not once an epoch); ``_forget`` removes it at exit."""
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
        with contextlib.suppress(FileNotFoundError):
            (self.folder / OPS).unlink()


def _forget(folder: Path) -> None:
    """At exit (or when its Outbox is gone): remove ``folder`` if nothing waits in it."""
    if not (folder / OPS).exists():
        shutil.rmtree(folder, ignore_errors=True)


def _record(op: Op, folder: Path) -> dict[str, Any]:
    return {"run_id": op.run_id, "tags": op.tags, "artifact_dir": op.artifact_dir,
            "file": str(op.path.relative_to(folder)) if op.path is not None else None,
            "metrics": [[m.key, m.value, m.timestamp, m.step] for m in op.metrics]}


def read_ops(folder: Path) -> list[Op]:
    """The requests written down in ``folder`` and not marked sent, in order (a missing
    journal is an empty list; a line cut short by a full disk is skipped)."""
    from mlflow.entities import Metric

    ops: dict[int, Op] = {}
    file = folder / OPS
    for number, line in enumerate(file.read_text().splitlines() if file.is_file() else []):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "sent" in data:
            for seq in data["sent"]:
                ops.pop(seq, None)
            continue
        seq = data.get("seq", -1 - number)  # an outbox of before the journal: no numbers
        ops[seq] = Op(data["run_id"], metrics=[Metric(*m) for m in data["metrics"]],
                      tags=data["tags"], artifact_dir=data["artifact_dir"],
                      path=folder / data["file"] if data["file"] else None,
                      seqs=[seq] if seq >= 0 else [])
    return list(ops.values())


def mark_sent(folder: Path, op: Op) -> None:
    """Write down in ``folder``'s journal that ``op`` is delivered (a resend that stops
    half-way does not send it again)."""
    if op.seqs:
        with (folder / OPS).open("a") as journal:
            journal.write(json.dumps({"sent": op.seqs}) + "\n")


def owner(folder: Path) -> str | None:
    """The owner tag of the process that made ``folder``, None if it is no outbox."""
    try:
        return str(json.loads((folder / META).read_text())["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def left_behind(uri: str) -> list[Path]:
    """Outboxes for ``uri`` whose process died on this host, oldest first."""
    root, now = outbox_root(), time.time()
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError):
            continue  # no outbox, or one being made
        if meta.get("uri") == uri and dead_because(str(meta.get("owner")), None, now):
            found.append(folder)
    return found


@contextlib.contextmanager
def claimed(folder: Path) -> Iterator[bool]:
    """Hold ``folder`` for sending; yields False if another process sent it meanwhile."""
    try:
        handle = os.open(folder / LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    except FileNotFoundError:  # removed: sent already
        yield False
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a second command waits for the first to finish
        yield (folder / OPS).is_file()
    finally:
        os.close(handle)


__all__ = ["FSYNC_S", "META", "OPS", "Op", "Outbox", "claimed", "left_behind", "mark_sent",
           "outbox_root", "owner", "read_ops"]
