"""A work queue on Optuna's storage: each item done exactly once, by whichever worker.

Items are named by keys (strings: a sweep's are its typed items as JSON, see
``mlbench.sweep``) and put in a study as enqueued trials carrying the key as a user
attribute. A worker takes a WAITING trial by
moving it to RUNNING, which Optuna's storages do in one transaction (an RDB row update,
or one journal record whose replay gives it to exactly one worker), so no two workers
ever get the same trial. While it works, a background thread records the trial's
heartbeat; a trial whose heartbeat is older than the grace period belongs to a dead
worker, and the next worker that looks fails it and enqueues a copy (Optuna's
``RetryHeartbeatStaleTrialCallback``), up to ``max_retry`` times. A worker that fails an
item for a reason of its own re-queues it the same way.

Several processes may enqueue the same missing key at once (two machines starting one
sweep together); of the live trials of one key the lowest-numbered is the one that runs,
and any other is failed, unrun, as a duplicate when a worker takes it.

A queue optimizes nothing, so a done item has no objective value: its trial ends
PRUNED, Optuna's finished state without a value, never COMPLETE with a made-up one
(optuna-dashboard would show the study's "best trial" and an objective plot of it).
The study says so in its user attributes (``mlbench.study_kind`` = ``queue``, and
what each state means), which optuna-dashboard lists on the study's page. Trials
COMPLETE in a queue made before this (value 1.0) still count as done.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

KEY = "mlbench.key"  # user attribute: the item a trial does
RUN_ID = "mlflow_run_id"  # user attribute: the MLflow run that did it
ERROR = "mlbench.error"  # user attribute: why a trial failed
DUPLICATE = "mlbench.duplicate"  # user attribute: failed unrun, another trial has its key
STUDY_KIND = "mlbench.study_kind"  # study user attribute: "queue" (vs "tuning")
STATES = "mlbench.trial_states"  # study user attribute: what a queue's trial states mean
MAX_RETRY = 2  # a failing item runs at most 1 + MAX_RETRY times per start of the sweep
DONE_STATE = TrialState.PRUNED  # a done item: finished, and no objective value
_DONE = (DONE_STATE, TrialState.COMPLETE)  # COMPLETE (value 1.0): queues made before
_LIVE = (TrialState.WAITING, TrialState.RUNNING, *_DONE)
_STATES_TEXT = ("a work queue, not an optimization: one trial per item, no objective "
                "value; PRUNED = item done (by its mlflow_run_id), RUNNING = being done, "
                "WAITING = to do, FAIL = a try that failed or whose worker died (retried "
                "as a new trial)")


@dataclass
class Progress:
    """Where every key stands: done (with its run id), held, waiting or lost."""

    done: dict[str, str] = field(default_factory=dict)  # key -> MLflow run id
    running: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    lost: dict[str, str] = field(default_factory=dict)  # key -> last error; no retry left

    @property
    def finished(self) -> bool:
        """Every key is done."""
        return not (self.running or self.waiting or self.lost)


class Job:
    """One taken item: heartbeats while open; ``complete`` or ``fail`` it once.

    Use as a context manager: leaving the block without ``complete`` fails the item
    (and re-queues it if retries are left).
    """

    def __init__(self, queue: WorkQueue, trial: FrozenTrial) -> None:
        self.queue = queue
        self.key: str = trial.user_attrs[KEY]
        self.number = trial.number
        self.trial_id = trial._trial_id
        # a retried item carries the MLflow run of the try that died, if it got that far
        self.previous_run_id: str | None = trial.user_attrs.get(RUN_ID)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._done = False

    def __enter__(self) -> Job:
        storage = self.queue.storage
        storage.record_heartbeat(self.trial_id)  # alive from the moment it is taken
        self._beat = threading.Thread(target=self._beats, name="mlbench-heartbeat",
                                      daemon=True)
        self._beat.start()
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        if not self._done:
            reason = "interrupted" if kind is KeyboardInterrupt else _first_line(exc)
            self.fail(reason or "left unfinished")
        self._stop.set()

    def _beats(self) -> None:
        interval = self.queue.storage.get_heartbeat_interval()
        while not self._stop.wait(interval):
            try:
                self.queue.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001, S112 - a missed beat is retried next interval
                continue

    def set_run_id(self, run_id: str) -> None:
        """Record the MLflow run doing this item (before the work, so either finds the other)."""
        self.queue.storage.set_trial_user_attr(self.trial_id, RUN_ID, run_id)

    def complete(self, run_id: str) -> None:
        """The item is done; ``run_id`` is the MLflow run that did it. The trial ends
        ``DONE_STATE`` (PRUNED: finished without a value; a queue has no objective)."""
        self.set_run_id(run_id)
        self._stop.set()
        self.queue.study.tell(self.number, state=DONE_STATE)  # done, and no value
        self._done = True

    def fail(self, reason: str, *, retry: bool = True) -> None:
        """The item failed; it is re-queued while retries are left."""
        self._stop.set()
        storage = self.queue.storage
        storage.set_trial_user_attr(self.trial_id, ERROR, reason[:500])
        self.queue.study.tell(self.number, state=TrialState.FAIL)
        self._done = True
        if retry:
            self.queue.retry(self.queue.study, storage.get_trial(self.trial_id))


class WorkQueue:
    """The items of one study on ``storage`` (a heartbeat-enabled Optuna storage).

    Example:
        >>> queue = WorkQueue.open(storage, "sweep-x", ["base:s0", "cell:a:c2:s0"])
        >>> with queue.take() as job:  # doctest: +SKIP
        ...     job.complete(run_id)
    """

    def __init__(self, study: optuna.Study, storage: optuna.storages.BaseStorage,
                 created: bool, max_retry: int = MAX_RETRY) -> None:
        self.study = study
        self.storage = storage
        self.created = created  # this process created the study
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    @classmethod
    def open(cls, storage: optuna.storages.BaseStorage, name: str, keys: Iterable[str],
             max_retry: int = MAX_RETRY) -> WorkQueue:
        """The study ``name`` (created if new), with every key not done or queued enqueued.

        Keys are enqueued in the order given: workers take the lowest numbers first.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                study = optuna.create_study(study_name=name, storage=storage)
                created = True
            except optuna.exceptions.DuplicatedStudyError:
                study = optuna.load_study(study_name=name, storage=storage)
                created = False
        if study.user_attrs.get(STATES) != _STATES_TEXT:  # shown by optuna-dashboard
            study.set_user_attr(STUDY_KIND, "queue")
            study.set_user_attr(STATES, _STATES_TEXT)
        queue = cls(study, storage, created, max_retry)
        queue.enqueue(keys)
        return queue

    def enqueue(self, keys: Iterable[str]) -> list[str]:
        """Enqueue each key that has no live (waiting, running or complete) trial."""
        live = {t.user_attrs.get(KEY) for t in self._trials() if t.state in _LIVE}
        missing = [k for k in dict.fromkeys(keys) if k not in live]
        for key in missing:
            self.study.enqueue_trial({}, user_attrs={KEY: key}, skip_if_exists=False)
        return missing

    def progress(self) -> Progress:
        """Fail the trials of dead workers (re-queueing them), then say where each key is."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
        progress = Progress()
        errors: dict[str, str] = {}
        for trial in self._trials():
            key = trial.user_attrs.get(KEY)
            if key is None:
                continue
            if trial.state in _DONE:
                progress.done[key] = trial.user_attrs.get(RUN_ID, "")
            elif trial.state == TrialState.RUNNING:
                progress.running.add(key)
            elif trial.state == TrialState.WAITING:
                progress.waiting.add(key)
            elif not trial.user_attrs.get(DUPLICATE):
                errors[key] = trial.user_attrs.get(ERROR, "its worker died")
        progress.running -= progress.done.keys()
        progress.waiting -= progress.done.keys() | progress.running
        live = progress.done.keys() | progress.running | progress.waiting
        progress.lost = {k: e for k, e in errors.items() if k not in live}
        return progress

    def take(self, first: Callable[[str], bool] = lambda key: True,
             only: str | None = None) -> Job | None:
        """Take one waiting item (those for which ``first`` is true before the others), or
        only the item ``only``; None when nothing is waiting. Use the Job as a context."""
        trials = self._trials()
        waiting = [t for t in trials if t.state == TrialState.WAITING
                   and KEY in t.user_attrs and only in (None, t.user_attrs[KEY])]
        waiting.sort(key=lambda t: (not first(t.user_attrs[KEY]), t.number))
        for trial in waiting:
            try:
                taken = self.storage.set_trial_state_values(trial._trial_id,
                                                            state=TrialState.RUNNING)
            except (optuna.exceptions.StorageInternalError,
                    optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
                continue  # another worker's write got there first (sqlite busy, say)
            if not taken:
                continue
            job = Job(self, trial)
            if self._duplicate(trial, trials):
                self.storage.set_trial_user_attr(trial._trial_id, DUPLICATE, True)
                self.study.tell(trial.number, state=TrialState.FAIL)
                continue
            _say_retaken(trial, trials)  # issue 20: a resume, not a restart, is said so
            return job
        return None

    def _duplicate(self, trial: FrozenTrial, seen: list[FrozenTrial]) -> bool:
        """Another trial of this key is done, or live with a lower number.

        Trials of one key besides this one exist only when two processes enqueued it at
        once, or it was retried: only then are the trials read again (as they are now).
        """
        key = trial.user_attrs[KEY]
        if not any(t.user_attrs.get(KEY) == key and t.number != trial.number for t in seen):
            return False
        for other in self._trials():
            if other.number == trial.number or other.user_attrs.get(KEY) != key:
                continue
            if other.state in _DONE:
                return True
            if other.state in (TrialState.WAITING, TrialState.RUNNING) and \
                    other.number < trial.number:
                return True
        return False

    def run_id_of(self, key: str) -> str | None:
        """The MLflow run id of the trial that did (or is doing) ``key``, if any."""
        trials = [t for t in self._trials() if t.user_attrs.get(KEY) == key and RUN_ID in
                  t.user_attrs and t.state in _LIVE]
        return max(trials, key=lambda t: t.number).user_attrs[RUN_ID] if trials else None

    def _trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)


def _say_retaken(trial: FrozenTrial, trials: list[FrozenTrial]) -> None:
    """One line when ``trial`` redoes an item another try left (issue 20)."""
    before = trial.system_attrs.get("failed_trial")
    if before is None:
        return
    old = next((t for t in trials if t.number == before), None)
    error = old.user_attrs.get(ERROR) if old is not None else None
    why = f"its try failed ({error})" if error else \
        "its worker died (no heartbeat for the grace period)"
    run = trial.user_attrs.get(RUN_ID)
    print(f"mlbench: taking {trial.user_attrs[KEY]} again: {why}"
          + (f"; run {run} was doing it" if run else ""), file=sys.stderr, flush=True)


def drain(queue: WorkQueue, do: Callable[[Job], None], max_poll_s: float = 5.0, *,
          first: Callable[[str, Progress], bool] = lambda key, progress: True,
          on_error: Callable[[str, Exception], None] | None = None,
          on_wait: Callable[[set[str]], None] | None = None) -> int:
    """Take and ``do`` items until none is waiting or held by a live worker; return how
    many this process did.

    The one work loop of every queue (a sweep's, the tuned runs', a base model's).
    ``do`` must ``complete`` its job; if it raises, the item is failed (re-queued while
    retries are left) and the error goes to ``on_error(key, error)`` (which may raise
    to stop the loop), or propagates without one. Items for which ``first(key,
    progress)`` holds are taken before others. ``on_wait(keys)`` hears, once per wait,
    which items other workers hold while this one has nothing to take.
    """
    ran, wait, said = 0, 0.5, False
    while True:
        progress = queue.progress()
        job = queue.take(first=lambda key, p=progress: first(key, p))
        if job is None:
            if not (progress.running or progress.waiting):
                return ran
            if on_wait is not None and progress.running and not said:
                on_wait(set(progress.running))
                said = True
            time.sleep(wait)  # poll: a live worker holds it; a dead one's comes back
            wait = min(2 * wait, max_poll_s)
            continue
        wait, said = 0.5, False
        try:
            with job:
                do(job)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(job.key, exc)
            continue
        ran += 1


def wait_for(queue: WorkQueue, key: str, do: Callable[[Job], None],
             max_poll_s: float = 5.0) -> str:
    """The MLflow run id of item ``key``: done already, done here if it is waiting, or
    waited for while a live worker does it (a dead worker's comes back as waiting after
    the grace period). A RuntimeError if it was given up."""
    wait = 0.5
    while True:
        progress = queue.progress()
        if key in progress.done:
            return progress.done[key]
        if key in progress.lost:
            raise RuntimeError(f"{key} failed: {progress.lost[key]}")
        job = queue.take(only=key)
        if job is not None:
            with job:
                do(job)
            continue
        time.sleep(wait)  # poll while a live worker does it
        wait = min(2 * wait, max_poll_s)


def queue_once(storage: optuna.storages.BaseStorage, prefix: str
               ) -> Callable[[str, Callable[[], str]], str]:
    """``once(key, work)``: ``work`` done by exactly one of the processes that share
    ``storage`` (a work queue of one item, study ``<prefix>-<key>``), the others waiting
    for it; returns the MLflow run id that did it. What ``runs.obtain_base`` needs to
    obtain a base model that several tuning workers want at once."""

    def once(key: str, work: Callable[[], str]) -> str:
        queue = WorkQueue.open(storage, f"{prefix}-{key.replace(':', '-')}", [key])
        return wait_for(queue, key, lambda job: job.complete(work()))

    return once


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = [
    "DONE_STATE", "DUPLICATE", "ERROR", "KEY", "MAX_RETRY", "RUN_ID", "STATES", "STUDY_KIND",
    "Job", "Progress", "WorkQueue", "drain", "queue_once", "wait_for",
]
