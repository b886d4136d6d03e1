"""Talking to MLflow through outages: retry with backoff, one line when it goes, one when back.

Every request a run needs (metrics, params, tags, artifacts, ending the run) goes through
``Link.call``: a failure is retried with exponential backoff (capped), so a run whose
work is done is not lost to a tracking server that restarts. The user sees one line on
stderr when the server stops answering (or answers with an error, such as HTTP 500,
which MLflow's client would otherwise retry silently for minutes) and one when it is back.

Per-epoch metrics go from one background thread (``Sender``), so training never waits on
MLflow. MLflow's own asynchronous logging polls its queue with a one-second timeout and
ending a run waits for that poll; this sender blocks on its queue instead, so ``flush``
returns as soon as the last batch is sent.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

T = TypeVar("T")

# MLflow's HTTP client retries 5xx answers and lost connections by itself for minutes,
# silently. Keep its retries short, so that ours (which say so) take over within 30 s.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

GIVE_UP_S = float(os.environ.get("MLBENCH_TRACKING_GIVE_UP", "3600"))  # outage that ends a run


class Link:
    """Calls to the tracking store that survive outages, reporting each outage once.

    Args:
        uri: shown in the lines printed (no credentials are ever part of it).
        give_up_s: how long an outage may last before the error is raised.
        max_backoff_s: the longest wait between two tries.
    """

    def __init__(self, uri: str, give_up_s: float = GIVE_UP_S, max_backoff_s: float = 10.0) -> None:
        self.uri = uri
        self.give_up_s = give_up_s
        self.max_backoff_s = max_backoff_s
        self._lock = threading.Lock()
        self._down_since: float | None = None

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``fn(*args, **kwargs)``, retried with backoff while the server is away."""
        wait, started = 0.5, time.monotonic()
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any failure of the server is retried
                if not _retryable(exc) or time.monotonic() - started > self.give_up_s:
                    raise
                self._went_away(exc)
                time.sleep(wait)  # backoff
                wait = min(2 * wait, self.max_backoff_s)
                continue
            self._came_back()
            return result

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


def _retryable(exc: Exception) -> bool:
    """A server or network failure (retried), not a request the server refused (4xx)."""
    code = getattr(exc, "get_http_status_code", lambda: None)()
    text = str(exc)
    if code is not None and 400 <= int(code) < 500 and "429" not in text:
        return "Max retries exceeded" in text or "Connection" in text
    return True


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for marker in ("500", "502", "503", "504"):
        if f"{marker} error" in text or f"status code {marker}" in text or f"'{marker}'" in text:
            return f"HTTP {marker}: the server answers but its API fails"
    if "Connection refused" in text or "Max retries exceeded" in text:
        return "connection refused"
    return text[:160]


class Sender:
    """Sends ``log_batch`` calls in order from a daemon thread; ``flush`` waits and reports.

    Batches of one run waiting together are merged into one request (up to MLflow's
    1,000 metrics per request); a batch that fails is re-sent through ``link`` until the
    server takes it.
    """

    MAX_METRICS = 1000

    def __init__(self, client: MlflowClient, link: Link) -> None:
        self.client = client
        self.link = link
        self._queue: queue.Queue[tuple[str, list[Metric], list[RunTag]]] = queue.Queue()
        self._errors: list[Exception] = []
        self._thread: threading.Thread | None = None

    def send(self, run_id: str, metrics: Sequence[Metric], tags: Sequence[RunTag]) -> None:
        """Queue one batch for ``run_id``; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mlbench-sender",
                                            daemon=True)
            self._thread.start()
        self._queue.put((run_id, list(metrics), list(tags)))

    def flush(self) -> None:
        """Wait until every queued batch is sent; raise the first error if one failed."""
        self._queue.join()
        if self._errors:
            error, self._errors = self._errors[0], []
            raise RuntimeError(f"logging metrics to MLflow failed: {error}") from error

    def _loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:  # merge what else is waiting for the same run
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
            try:
                self._send(items)
            finally:
                for _ in items:
                    self._queue.task_done()

    def _send(self, items: list[tuple[str, list[Metric], list[RunTag]]]) -> None:
        batches: list[tuple[str, list[Metric], dict[str, RunTag]]] = []
        for run_id, metrics, tags in items:
            last = batches[-1] if batches else None
            if last and last[0] == run_id and len(last[1]) + len(metrics) <= self.MAX_METRICS:
                last[1].extend(metrics)
                last[2].update({t.key: t for t in tags})
            else:
                batches.append((run_id, list(metrics), {t.key: t for t in tags}))
        for run_id, metrics, tags in batches:
            try:
                self.link.call(self.client.log_batch, run_id, metrics=metrics,
                               tags=list(tags.values()))
            except Exception as exc:  # noqa: BLE001 - reported by flush, in the caller
                self._errors.append(exc)


__all__ = ["Link", "Sender"]
