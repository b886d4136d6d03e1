"""Sending what an outbox holds after its process stopped: ``python -m mlbench resend
FOLDER`` (the folder a give-up line names), and the next command's pick-up of what a
process killed during an outage left (``send_left``, called when a Tracker opens).

Requests go in the order they were queued, each marked sent in the journal once
delivered; the folder is removed at the end. A request sent twice (delivered just before
the kill, not yet marked) changes nothing: MLflow keeps one metric per key, value,
timestamp and step, and a tag or an artifact is overwritten.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

from mlbench.errors import ConfigError
from mlbench.tracking._outbox import OPS, claimed, left_behind, mark_sent, owner, read_ops
from mlbench.tracking._owner import dead_because
from mlbench.tracking._sender import GIVE_UP_S, Link, deliver


def resend(folder: Path, uri: str, give_up_s: float = GIVE_UP_S) -> int:
    """Send what an outbox ``folder`` holds to the store at ``uri``, in order; remove the
    folder once all is sent. Returns how many requests were sent; a ConfigError if
    ``folder`` is no outbox or its process is still alive (it sends them itself)."""
    if not (folder / OPS).is_file():
        raise ConfigError(f"{folder}: no outbox here (no {OPS}); the line that named the "
                          "outbox gave its folder")
    made_by = (owner(folder) or "|||").split("|")
    if made_by[0] == socket.gethostname() and not dead_because("|".join(made_by), None,
                                                                time.time()):
        raise ConfigError(f"{folder}: its process ({made_by[2]} on this host) is still "
                          "running and sends it itself; resend it once that process ended")
    client, link = MlflowClient(uri), Link(uri, give_up_s=give_up_s)
    with claimed(folder) as mine:
        return _send(client, link, folder) if mine else 0


def send_left(client: MlflowClient, link: Link) -> int:
    """Send the outboxes for ``link``'s store that processes of this host left when they
    died (kill -9 during an outage), one line each; return how many requests were sent."""
    total = 0
    for folder in left_behind(link.uri):
        with claimed(folder) as mine:
            if not mine:  # sent by another command meanwhile, or nothing was queued
                shutil.rmtree(folder, ignore_errors=True)
                continue
            pid = (owner(folder) or "|||").split("|")[2]
            sent = _send(client, link, folder)
        print(f"mlbench: sent {sent} requests that process {pid} queued for {link.uri} "
              f"before it died (kept in {folder})", file=sys.stderr, flush=True)
        total += sent
    return total


def _send(client: MlflowClient, link: Link, folder: Path) -> int:
    """Deliver ``folder``'s unsent requests in order (under its claim), then remove it."""
    ops = read_ops(folder)
    sent = 0
    for op in ops:
        if op.path is not None and not op.path.is_file():
            continue  # a file removed by hand: its tags would name a checkpoint not there
        deliver(client, link, op)
        mark_sent(folder, op)
        sent += 1
    shutil.rmtree(folder)
    return sent


__all__ = ["resend", "send_left"]
