"""What waits to be sent to the tracking server, on local disk: files copied when queued,
and, once the server is given up on, every request left, written down for ``resend``.

An outbox is one folder per tracker (under ``$MLBENCH_OUTBOX``, else
``~/.cache/mlbench/outbox``): ``<n>/<name>`` holds a queued file until it is uploaded,
``ops.jsonl`` the requests left when the link gave up (one JSON object a line: run id,
metrics, tags, file, artifact folder). ``python -m mlbench resend FOLDER`` sends them in
order and removes the folder; the interrupted run is then marked FAILED by the next
command and its rerun resumes from the checkpoint just sent.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPS = "ops.jsonl"


@dataclass
class Op:
    """One request for a run: a file to upload (``path``, into ``artifact_dir``), then
    ``metrics`` and ``tags`` in one batch. ``slot`` names a file a newer one replaces."""

    run_id: str
    metrics: list[Any] = field(default_factory=list)  # mlflow.entities.Metric
    tags: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    artifact_dir: str | None = None
    slot: str | None = None


def outbox_root() -> Path:
    """Where outboxes are made: ``$MLBENCH_OUTBOX``, else ``~/.cache/mlbench/outbox``."""
    given = os.environ.get("MLBENCH_OUTBOX")
    return Path(given) if given else Path.home() / ".cache" / "mlbench" / "outbox"


class Outbox:
    """This process's folder of files waiting for upload and requests left unsent."""

    def __init__(self, folder: Path | None = None) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # one folder per outbox: several trackers in one process (a sweep's, a test's)
        # must never number their files into the same folder
        unique = f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.folder = folder or outbox_root() / unique
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.spilled = 0

    def keep(self, op: Op, path: Path) -> Op:
        """Copy ``path`` into the outbox (the caller may delete it now); ``op`` uploads it."""
        with self._lock:  # never while ``_tidy`` removes the (empty) folder
            slot = self.folder / str(next(self._numbers))
            slot.mkdir(parents=True, exist_ok=True)
        op.path = Path(shutil.copy2(path, slot / Path(path).name))
        return op

    def discard(self, op: Op) -> None:
        """Forget ``op``'s file (uploaded, or replaced by a newer one)."""
        if op.path is not None and op.path.parent.parent == self.folder:
            shutil.rmtree(op.path.parent, ignore_errors=True)
        self._tidy()

    def spill(self, ops: list[Op]) -> None:
        """Write ``ops`` down in the outbox, in order, for ``resend``."""
        if not ops:
            return
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write(ops)

    def _write(self, ops: list[Op]) -> None:
        with (self.folder / OPS).open("a") as out:
            for op in ops:
                out.write(json.dumps(_record(op, self.folder)) + "\n")
                self.spilled += 1

    def describe(self) -> str:
        """One sentence: what is kept where and how to send it on ('' if nothing is)."""
        if not self.spilled and not any(self.folder.glob("*/*")):
            return ""
        return (f"The work done is kept in {self.folder}; send it on with `python -m mlbench "
                f"resend {self.folder}` (with --tracking-uri if not $MLFLOW_TRACKING_URI).")

    def _tidy(self) -> None:
        """Remove the folder when nothing is left in it (under the lock: ``keep`` may be
        making a slot in it at this moment)."""
        with self._lock, contextlib.suppress(OSError):
            self.folder.rmdir()


def _record(op: Op, folder: Path) -> dict[str, Any]:
    return {"run_id": op.run_id, "tags": op.tags, "artifact_dir": op.artifact_dir,
            "file": str(op.path.relative_to(folder)) if op.path is not None else None,
            "metrics": [[m.key, m.value, m.timestamp, m.step] for m in op.metrics]}


def read_ops(folder: Path) -> list[Op]:
    """The requests ``spill`` wrote in ``folder``, in order (a ConfigError-free read: a
    missing file is an empty list)."""
    from mlflow.entities import Metric

    ops = []
    file = folder / OPS
    for line in file.read_text().splitlines() if file.is_file() else []:
        data = json.loads(line)
        ops.append(Op(data["run_id"], metrics=[Metric(*m) for m in data["metrics"]],
                      tags=data["tags"], artifact_dir=data["artifact_dir"],
                      path=folder / data["file"] if data["file"] else None))
    return ops


__all__ = ["OPS", "Op", "Outbox", "outbox_root", "read_ops"]
