"""Talking to MLflow through outages: retry with backoff, one line when it goes, one when back.

Every request a run needs goes through ``Link.call``: a failure is retried with
exponential backoff (capped). Two kinds of failure are told apart:

- the server does not answer (connection refused, a timeout: it restarts, the network is
  away): retried for ``outage_s`` (an hour by default), training going on meanwhile;
- the server answers, but with an error that retrying does not cure (HTTP 5xx, a broken
  store): retried for ``give_up_s`` (``--give-up``, 30 s by default), then the link gives
  up with ``TrackingUnavailable``, whose one line names the server, the error, where the
  work done is kept and how to send it on. A 403 is bad input at once, in one line.

The user sees one line on stderr when the server stops answering or fails and one when
it is back.

Per-epoch metrics, tags, checkpoints and artifacts go from one background thread
(``Sender``), so training never waits on MLflow: every request is written down in an
outbox folder on local disk when queued (``_outbox``: a journal line, and a copy of a
file), so a long outage costs disk, not memory, and a kill -9 during one loses nothing
(the next command, or ``resend``, sends it). A newer checkpoint of a run replaces one
still waiting. ``flush`` (before a run ends) waits until everything is delivered.
"""

from __future__ import annotations

import _thread
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from mlbench.errors import ConfigError, TrackingRefused, TrackingUnavailable
from mlbench.tracking._connect import redact
from mlbench.tracking._outbox import Op, Outbox

T = TypeVar("T")

# MLflow's HTTP client retries 5xx answers and lost connections by itself for minutes,
# silently. Keep its retries short, so that ours (which say so) take over.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

GIVE_UP_S = 30.0  # a server that answers with errors: named, then the command stops
OUTAGE_S = float(os.environ.get("MLBENCH_OUTAGE_S", "3600"))  # a server that does not answer

_GIVEN_UP: list[TrackingUnavailable] = []  # this process's give-up, for the CLI's line


def given_up() -> TrackingUnavailable | None:
    """The ``TrackingUnavailable`` this process gave up with, if it did."""
    return _GIVEN_UP[0] if _GIVEN_UP else None


class Link:
    """Calls to the tracking store that survive outages, reporting each outage once.

    Args:
        uri: shown in the lines printed (any password in it is hidden).
        give_up_s: how long a server answering with errors is retried.
        outage_s: how long a server that does not answer is waited for.
        max_backoff_s: the longest wait between two tries.
    """

    def __init__(self, uri: str, give_up_s: float = GIVE_UP_S, outage_s: float = OUTAGE_S,
                 max_backoff_s: float = 10.0) -> None:
        self.uri = redact(uri)
        self.give_up_s = give_up_s
        self.outage_s = outage_s
        self.max_backoff_s = max_backoff_s
        self.experiment = "Default"  # named in a 403's line
        self.outbox: Outbox | None = None  # named in the give-up line
        self._lock = threading.Lock()
        self._down_since: float | None = None

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``fn(*args, **kwargs)``, retried with backoff while the server is away."""
        wait, started = 0.5, time.monotonic()
        while True:
            if _GIVEN_UP:  # once given up, nothing more is tried: the command is ending
                raise _GIVEN_UP[0]
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - sorted below
                kind = _kind(exc)
                if kind == "refused":
                    raise self._refusal(exc) from None
                if kind == "request":
                    raise
                limit = self.outage_s if kind == "down" else self.give_up_s
                if time.monotonic() - started > limit:
                    raise self._give_up(exc, limit) from None
                self._went_away(exc)
                time.sleep(wait)  # backoff
                wait = min(2 * wait, self.max_backoff_s)
                continue
            self._came_back()
            return result

    def _refusal(self, exc: Exception) -> TrackingRefused:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
        who = f"user {user!r}" if user else "these credentials"
        return TrackingRefused(
            f"the tracking server {self.uri} refused {who} (HTTP 403: {_reason(exc)}) writing "
            f"to experiment {self.experiment!r}; an admin grants it with `python -m mlbench "
            f"grant --user {user or 'USER'} --experiment {self.experiment}` (run with the "
            "admin's MLFLOW_TRACKING_USERNAME/PASSWORD)")

    def _give_up(self, exc: Exception, limit: float) -> TrackingUnavailable:
        kept = self.outbox.describe() if self.outbox is not None else ""
        line = (f"tracking server {self.uri} keeps failing ({_reason(exc)}) for {limit:.0f} s "
                f"(--give-up); gave up. {kept or 'Nothing is waiting to be sent.'} Rerun the "
                "same command once the server works: it resumes from the run's last "
                "checkpoint")
        error = TrackingUnavailable(line)
        with self._lock:
            if not _GIVEN_UP:
                _GIVEN_UP.append(error)
        return _GIVEN_UP[0]

    def _went_away(self, exc: Exception) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        print(f"mlbench: tracking server {self.uri} is failing ({_reason(exc)}); "
              "retrying with backoff, training goes on", file=sys.stderr, flush=True)

    def _came_back(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            print(f"mlbench: tracking server {self.uri} is back after "
                  f"{time.monotonic() - since:.0f} s; nothing was lost", file=sys.stderr,
                  flush=True)


_SERVER_ERROR = re.compile(r"too many 5\d\d error responses|status code 5\d\d|HTTP 5\d\d|"
                           r"INTERNAL_ERROR|TEMPORARILY_UNAVAILABLE|5\d\d Server Error")
_NO_ANSWER = ("Connection refused", "Connection reset", "Connection aborted",
              "Failed to establish", "RemoteDisconnected", "Read timed out", "timed out",
              "Name or service not known", "Temporary failure in name resolution")


def _kind(exc: Exception) -> str:
    """``refused`` (403), ``request`` (another 4xx: a bad request, not retried), ``down``
    (no answer: an outage) or ``failing`` (an answer that is an error)."""
    code = getattr(exc, "get_http_status_code", lambda: None)()
    text = str(exc)
    if _SERVER_ERROR.search(text):
        return "failing"
    if any(marker in text for marker in _NO_ANSWER) or isinstance(exc, ConnectionError):
        return "down"
    if code is not None and int(code) == 403:
        return "refused"
    if code is not None and 400 <= int(code) < 500 and int(code) != 429:
        return "request"
    return "failing"


def is_outage(exc: Exception) -> bool:
    """True when ``exc`` says the server is away or failing (no answer, or a 5xx), not
    that the request itself was wrong (a missing artifact, a 4xx)."""
    return _kind(exc) == "down" or bool(_SERVER_ERROR.search(str(exc)))


def _reason(exc: Exception) -> str:
    text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    found = re.search(r"(?:too many |status code |HTTP )?(5\d\d)(?: error| Server)", text)
    if found:
        return f"HTTP {found.group(1)}: the server answers but its API fails"
    if "Connection refused" in text or "Failed to establish" in text:
        return "connection refused"
    if any(marker in text for marker in _NO_ANSWER):
        return "no answer"
    return text[:160]


class Sender:
    """Sends metrics, tags and files in order from a daemon thread; ``flush`` waits.

    Every request is written down in the outbox when queued and marked sent once
    delivered. Metric batches of one run waiting together are merged into one request
    (up to MLflow's 1,000 metrics per request); a newer file of the same run and
    ``slot`` (a checkpoint) replaces one still waiting. Whatever is not sent when the
    link gives up stays in the outbox for ``python -m mlbench resend``; the training
    thread then stops with the link's line (``interrupt`` raises it there at once).
    """

    MAX_METRICS = 1000

    def __init__(self, client: MlflowClient, link: Link, outbox: Outbox | None = None,
                 *, interrupt: Callable[[], None] | None = _thread.interrupt_main) -> None:
        self.client = client
        self.link = link
        self.outbox = outbox or Outbox(uri=link.uri)
        link.outbox = self.outbox
        self.interrupt = interrupt
        self._pending: list[Op] = []
        self._busy = 0
        self._cond = threading.Condition()
        self._errors: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def send(self, run_id: str, metrics: Sequence[Metric], tags: Sequence[RunTag]) -> None:
        """Queue one batch for ``run_id``; returns at once."""
        self._put(self.outbox.queue(Op(run_id, metrics=list(metrics),
                                       tags={t.key: t.value for t in tags})))

    def send_file(self, run_id: str, path: Path, artifact_dir: str | None = None, *,
                  tags: dict[str, str] | None = None, slot: str | None = None) -> None:
        """Queue an upload of a copy of ``path`` (then ``tags``); returns once it is copied."""
        self._put(self.outbox.queue(Op(run_id, tags=dict(tags or {}),
                                       artifact_dir=artifact_dir, slot=slot), path))

    def _put(self, op: Op) -> None:
        """Hand ``op``, already written down in the outbox, to the sending thread."""
        failed = given_up()
        if failed is not None:  # it stays in the outbox, for `resend`
            raise failed
        with self._cond:
            if op.slot is not None:  # a newer checkpoint replaces one still waiting
                for old in [o for o in self._pending if o.run_id == op.run_id
                            and o.slot == op.slot]:
                    self._pending.remove(old)
                    self.outbox.sent(old)
            self._pending.append(op)
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mlbench-sender",
                                            daemon=True)
            self._thread.start()

    def flush(self) -> None:
        """Wait until everything queued is sent; raise the first error if one failed."""
        with self._cond:
            while self._pending or self._busy:
                self._cond.wait(0.5)
        if self._errors:
            error, self._errors = self._errors[0], []
            if isinstance(error, (TrackingUnavailable, ConfigError)):
                raise error
            raise RuntimeError(f"logging to MLflow failed: {error}") from error

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                items, self._pending = self._pending, []
                self._busy = len(items)
            try:
                self._send(items)
            finally:
                with self._cond:
                    self._busy = 0
                    self._cond.notify_all()

    def _send(self, items: list[Op]) -> None:
        batches: list[Op] = []
        for op in items:  # merge consecutive metric batches of one run
            last = batches[-1] if batches else None
            if (last and op.path is None and last.path is None and last.run_id == op.run_id
                    and len(last.metrics) + len(op.metrics) <= self.MAX_METRICS):
                last.metrics.extend(op.metrics)
                last.tags.update(op.tags)
                last.seqs.extend(op.seqs)
            else:
                batches.append(op)
        for op in batches:
            try:
                deliver(self.client, self.link, op)
            except (TrackingUnavailable, ConfigError) as exc:  # given up on, or a 403: the
                self._errors.append(exc)  # rest stays in the outbox, for resend
                if self.interrupt is not None and isinstance(exc, TrackingUnavailable):
                    self.interrupt()  # the training thread stops with the line
                return
            except Exception as exc:  # noqa: BLE001 - reported by flush, in the caller
                self._errors.append(exc)  # a request the server refuses: never sent again
            self.outbox.sent(op)


def deliver(client: MlflowClient, link: Link, op: Op) -> None:
    """Send one queued operation: its file first, then its metrics and tags."""
    if op.path is not None:
        link.call(client.log_artifact, op.run_id, str(op.path), op.artifact_dir)
    if op.metrics or op.tags:
        link.call(client.log_batch, op.run_id, metrics=op.metrics,
                  tags=[RunTag(k, redact(v)) for k, v in op.tags.items()])


__all__ = ["GIVE_UP_S", "Link", "Sender", "deliver", "given_up"]
