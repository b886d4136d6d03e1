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
from mlflow.exceptions import MlflowException

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
        sent, refused = _send(client, link, folder) if mine else (0, 0)
    if refused:
        print(f"mlbench: {refused} requests of {folder} refused: {_refused_why(refused)}",
              file=sys.stderr, flush=True)
    return sent


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
            sent, refused = _send(client, link, folder)
        note = f"; {refused} refused: {_refused_why(refused)}" if refused else ""
        print(f"mlbench: sent {sent} requests that process {pid} queued for {link.uri} "
              f"before it died (kept in {folder}){note}", file=sys.stderr, flush=True)
        total += sent
    return total


def _send(client: MlflowClient, link: Link, folder: Path) -> tuple[int, int]:
    """Deliver ``folder``'s unsent requests in order (under its claim), then remove it.
    Returns how many were sent and how many the store refused (a request for a run
    deleted since: retrying never cures it)."""
    sent = refused = 0
    for op in read_ops(folder):
        if op.path is not None and not op.path.is_file():
            continue  # a file removed by hand: its tags would name a checkpoint not there
        try:
            deliver(client, link, op)
            sent += 1
        except MlflowException:  # a 4xx (Link.call retries all that may pass)
            refused += 1
        mark_sent(folder, op)
    shutil.rmtree(folder)
    return sent, refused


def _refused_why(count: int) -> str:
    """The reason given for ``count`` refused requests."""
    return (f"the store answered {'it' if count == 1 else 'them'} with an error that "
            "retrying does not cure (a run deleted meanwhile)")


__all__ = ["resend", "send_left"]
