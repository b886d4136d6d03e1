"""The sweep's work queue on real Optuna storages (journal file, sqlite, PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState

from mlbench.tuning import WorkQueue, open_storage, parse_storage
from mlbench.tuning._queue import DONE_STATE, DUPLICATE, KEY, MAX_RETRY, STUDY_KIND, drain
from tests import _queue_worker


def storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "journal":
        return f"journal:{tmp_path / 'q.journal'}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'q.db'}"
    return request.getfixturevalue("postgres_url")


def open_queue(url: str, keys: list[str], grace: int = 4) -> WorkQueue:
    return WorkQueue.open(open_storage(parse_storage(url), heartbeat_s=1, grace_s=grace),
                          "q", keys)


def worker(url: str, mode: str, out: Path, grace: int = 4,
           start: object = None) -> multiprocessing.Process:
    """A worker process (forked: no second start-up of torch and MLflow)."""
    proc = multiprocessing.get_context("fork").Process(
        target=_queue_worker.main, args=(url, "q", mode, str(out), str(grace), start))
    proc.start()
    return proc


def completed(queue: WorkQueue) -> Counter:
    return Counter(t.user_attrs[KEY] for t in queue.study.get_trials()
                   if t.state == DONE_STATE)


@pytest.mark.parametrize("kind", ["journal", "sqlite", "postgresql"])
def test_workers_on_one_storage_never_take_an_item_twice(kind, tmp_path, request):
    url = storage_url(kind, tmp_path, request)
    keys = [f"cell:{i}" for i in range(30)]
    queue = open_queue(url, keys)
    outs = [tmp_path / f"w{i}.txt" for i in range(3)]
    start = multiprocessing.get_context("fork").Barrier(len(outs))
    # a long grace: on a loaded machine a live worker's heartbeat must never look stale
    procs = [worker(url, "drain", out, grace=60, start=start) for out in outs]
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    taken = Counter(line for out in outs for line in out.read_text().split())
    assert set(taken) == set(keys) and set(taken.values()) == {1}  # each once, none lost
    assert completed(queue) == Counter(keys)
    assert sum(1 for out in outs if out.read_text()) >= 2  # the work was shared


def test_a_dead_workers_item_is_redone_by_another_after_the_grace(tmp_path):
    url = f"journal:{tmp_path / 'q.journal'}"
    queue = open_queue(url, ["cell:a", "cell:b"], grace=2)
    held = tmp_path / "held.txt"
    proc = worker(url, "hold", held, grace=2)
    while not held.exists() or not held.read_text():
        assert proc.is_alive()
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 while it holds cell:a
    proc.join()
    done: list[str] = []
    drain(queue, lambda job: (done.append(job.key), job.complete("r")), max_poll_s=0.5)
    assert sorted(done) == ["cell:a", "cell:b"]  # the dead worker's item came back
    states = Counter((t.user_attrs[KEY], t.state) for t in queue.study.get_trials())
    assert states[("cell:a", TrialState.FAIL)] == 1  # failed as stale, then retried
    assert states[("cell:a", DONE_STATE)] == 1
    assert queue.progress().finished


def test_a_worker_never_says_done_while_a_live_worker_holds_an_item(tmp_path):
    url = f"journal:{tmp_path / 'q.journal'}"
    queue = open_queue(url, ["cell:a"], grace=2)
    held = tmp_path / "held.txt"
    proc = worker(url, "hold", held, grace=2)
    while not held.exists() or not held.read_text():
        time.sleep(0.1)
    rerun = threading.Thread(target=drain, args=(queue, lambda job: job.complete("x")),
                             kwargs={"max_poll_s": 0.5})
    rerun.start()
    rerun.join(timeout=8)  # four grace periods: its heartbeat thread keeps it alive
    assert rerun.is_alive() and queue.progress().running == {"cell:a"}
    Path(f"{held}.release").touch()
    rerun.join(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0 and not rerun.is_alive()
    assert queue.progress().finished and completed(queue) == Counter(["cell:a"])


def test_an_item_that_keeps_failing_is_retried_then_named_and_a_rerun_retries_it(tmp_path):
    queue = open_queue(f"journal:{tmp_path / 'q.journal'}", ["cell:bad", "cell:ok"])
    tries = Counter()

    def do(job):
        tries[job.key] += 1
        if job.key == "cell:bad":
            raise RuntimeError("out of luck")
        job.complete("r")

    while True:
        try:
            drain(queue, do, max_poll_s=0.5)
            break
        except RuntimeError:
            continue
    assert tries == Counter({"cell:bad": 1 + MAX_RETRY, "cell:ok": 1})
    progress = queue.progress()
    assert not progress.finished and progress.lost == {"cell:bad": "out of luck"}
    assert queue.enqueue(["cell:bad", "cell:ok"]) == ["cell:bad"]  # a rerun tries again


def test_a_key_enqueued_twice_at_once_runs_once(tmp_path):
    queue = open_queue(f"journal:{tmp_path / 'q.journal'}", ["cell:a"])
    queue.study.enqueue_trial({}, user_attrs={KEY: "cell:a"})  # a second machine's enqueue
    done: list[str] = []
    drain(queue, lambda job: (done.append(job.key), job.complete("r")))
    assert done == ["cell:a"]
    (dup,) = [t for t in queue.study.get_trials() if t.user_attrs.get(DUPLICATE)]
    assert dup.state == TrialState.FAIL and dup.number == 1  # the later one, unrun


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_queue_has_no_objective_so_no_best_trial(kind, tmp_path, request):
    """Done items carry no value: Optuna (and optuna-dashboard, which shows a best trial
    only where one is COMPLETE) computes no best value from a queue; progress still
    counts every item done, and a queue made before (items COMPLETE with 1.0) too."""
    queue = open_queue(storage_url(kind, tmp_path, request), ["cell:a", "cell:b"])
    drain(queue, lambda job: job.complete(f"run-{job.key}"))
    trials = queue.study.get_trials()
    assert [t.state for t in trials] == [DONE_STATE] * 2
    assert all(t.values is None for t in trials)  # no made-up objective value
    assert not [t for t in trials if t.state == TrialState.COMPLETE]
    with pytest.raises(ValueError):  # "No trials are completed yet" (RDB: no record)
        _ = queue.study.best_value
    assert queue.study.best_trials == []
    assert queue.study.user_attrs[STUDY_KIND] == "queue"
    assert "no objective" in queue.study.user_attrs["mlbench.trial_states"]
    assert queue.progress().done == {"cell:a": "run-cell:a", "cell:b": "run-cell:b"}
    assert queue.progress().finished
    # a queue study of an earlier mlbench: its items were told COMPLETE with 1.0
    old = WorkQueue.open(queue.storage, "old", [])
    old.study.enqueue_trial({}, user_attrs={KEY: "cell:c"})
    job = old.take()
    job.set_run_id("run-c")
    old.study.tell(job.number, 1.0)
    assert old.progress().done == {"cell:c": "run-c"} and old.enqueue(["cell:c"]) == []


def test_optuna_dashboard_shows_no_best_trial_for_a_queue(tmp_path):
    """optuna-dashboard's own study API (its WSGI app, no server) on a drained queue."""
    dashboard = pytest.importorskip("optuna_dashboard", reason="pip install optuna-dashboard")
    import json
    from wsgiref.util import setup_testing_defaults

    queue = open_queue(f"journal:{tmp_path / 'q.journal'}", ["cell:a", "cell:b"])
    drain(queue, lambda job: job.complete(f"run-{job.key}"))
    env: dict = {"PATH_INFO": f"/api/studies/{queue.study._study_id}"}
    setup_testing_defaults(env)
    status: list[str] = []
    body = b"".join(dashboard.wsgi(queue.storage)(env, lambda s, h, e=None: status.append(s)))
    detail = json.loads(body)
    assert status == ["200 OK"] and detail["best_trials"] == []
    assert [t["state"] for t in detail["trials"]] == ["Pruned", "Pruned"]
    assert {"key": STUDY_KIND, "value": "queue"} in detail["user_attrs"]
