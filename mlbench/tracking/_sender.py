"""Per-epoch metrics sent from one background thread, so training never waits on MLflow.

MLflow's own asynchronous logging (``log_batch(synchronous=False)``) polls its queue
with a one-second timeout, and ending a run waits for that poll: up to a second per
run, more than the logging itself costs on short runs. This sender blocks on its queue
instead, so ``flush`` returns as soon as the last batch is sent.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag


class Sender:
    """Sends ``log_batch`` calls in order from a daemon thread; ``flush`` waits and reports.

    Batches of one run waiting together are merged into one request (up to MLflow's
    1,000 metrics per request).
    """

    MAX_METRICS = 1000

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
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
                last[2].update({t.key: t for t in tags})  # the newest heartbeat wins
            else:
                batches.append((run_id, list(metrics), {t.key: t for t in tags}))
        for run_id, metrics, tags in batches:
            try:
                self.client.log_batch(run_id, metrics=metrics, tags=list(tags.values()))
            except Exception as exc:  # noqa: BLE001 - reported by flush, in the caller
                self._errors.append(exc)


__all__ = ["Sender"]
