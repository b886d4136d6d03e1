"""Issue 20's faults with real parts: a real `mlflow server` stopped mid-run, a server whose
API turns to HTTP 500 (a real forwarding proxy in front of a real server), kill -9 of real
`python -m mlbench` processes, several processes opening one fresh sqlite store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests._failing_proxy import FailingProxy
from tests.conftest import (
    REPO,
    clean_env,
    free_port,
    start_mlflow_server,
    stop_mlflow_server,
    tiny_argv,
)

TRAIN = ["--dataset", "synthetic", "--synthetic-shape", "1x8x8", "--synthetic-classes", "4",
         "--synthetic-samples", "192", "--model", "lenet", "--lr", "0.1", "--batch-size", "32",
         "--device", "cpu", "--checkpoint-every", "0"]


def _mlbench(*argv: str) -> list[str]:
    return [sys.executable, "-m", "mlbench", *argv]


def _runs(uri: str, stage: str | None = None) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`mlbench.stage` = '{stage}'" if stage else "")


def _wait(predicate, proc: subprocess.Popen, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert proc.poll() is None, "the command ended before the fault could be made"
        assert time.monotonic() < deadline
        time.sleep(0.3)


def _checkpointed(uri: str, stage: str, epoch: int) -> bool:
    try:
        return any(int(r.data.tags.get("mlbench.checkpoint_epoch", 0)) >= epoch
                   for r in _runs(uri, stage))
    except Exception:  # noqa: BLE001 - the store is being created, or the server is away
        return False


@pytest.fixture
def switch(mlflow_server):
    with FailingProxy(mlflow_server) as proxy:
        yield proxy, proxy.url, mlflow_server


@pytest.mark.slow
def test_a_server_that_keeps_failing_is_named_the_work_kept_sent_on_and_resumed(
        switch, tmp_path):
    """HTTP 500 mid-run: one line after --give-up, exit 1, no traceback; the outbox it names
    is sent with `resend`, and the rerun marks the dead run FAILED and resumes from it."""
    server, proxy, real = switch
    env = {**clean_env(proxy), "MLBENCH_OUTBOX": str(tmp_path / "outbox")}
    argv = _mlbench("train", *TRAIN, "--epochs", "40", "--give-up", "3", "--tracking-uri", proxy)
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait(lambda: _checkpointed(real, "train", 2), proc)
    server.failing.set()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "keeps failing (HTTP 500" in line and "--give-up" in line
    (outbox,) = (tmp_path / "outbox").iterdir()
    assert f"python -m mlbench resend {outbox}" in line
    assert (outbox / "ops.jsonl").is_file()
    (killed,) = _runs(real, "train")
    assert killed.info.status == "RUNNING"  # the server could not be told

    server.failing.clear()
    sent = subprocess.run(_mlbench("resend", str(outbox), "--tracking-uri", proxy), cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert sent.returncode == 0, sent.stderr[-3000:]
    assert not outbox.exists()
    again = subprocess.run([*argv[:-4], "--tracking-uri", proxy], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    runs = {r.info.run_id: r for r in _runs(real, "train")}
    assert runs[killed.info.run_id].info.status == "FAILED"
    assert "gone" in runs[killed.info.run_id].data.tags["mlbench.failed_reason"]
    (resumed,) = [r for r in runs.values() if r.info.run_id != killed.info.run_id]
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["mlbench.resumed_from"] == killed.info.run_id
    assert f"resumes from the checkpoint of run {killed.info.run_id}" in again.stderr
    curve = MlflowClient(real).get_metric_history(resumed.info.run_id, "val_acc1")
    assert sorted(m.step for m in curve) == list(range(1, 41))


@pytest.mark.slow
def test_training_goes_on_through_an_outage_and_every_epoch_and_artifact_arrives(tmp_path):
    """The server stopped for 10 s mid-training: epochs are logged (client time) while it is
    away, and the run ends FINISHED with every epoch's metrics, checkpoint and weights."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    env = {**clean_env(uri), "MLBENCH_OUTBOX": str(tmp_path / "outbox")}
    # 300 short epochs: on a quiet machine 30 finish before the server is down
    argv = _mlbench("train", *TRAIN, "--epochs", "300", "--tracking-uri", uri)
    log = tmp_path / "train.log"
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    try:
        _wait(lambda: _checkpointed(uri, "train", 1), proc)
        stop_mlflow_server(server)
        away = time.time() * 1000
        time.sleep(10)
        back = time.time() * 1000
        server = start_mlflow_server(tmp_path, port)
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "Traceback" not in text and "is back after" in text
        (run,) = _runs(uri, "train")
        assert run.info.status == "FINISHED"
        client = MlflowClient(uri)
        curve = client.get_metric_history(run.info.run_id, "val_acc1")
        assert sorted(m.step for m in curve) == list(range(1, 301))
        assert any(away < m.timestamp < back for m in curve), "training waited for the server"
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
            "base_model", "checkpoint"}
        assert not list((tmp_path / "outbox").glob("*/*"))  # everything was delivered
    finally:
        proc.kill()
        stop_mlflow_server(server)


@pytest.mark.slow
def test_epochs_queued_in_an_outage_survive_a_kill_and_arrive_exactly_once(tmp_path):
    """The server stopped, epochs queued on local disk meanwhile, kill -9 while it is away:
    once it is back, the rerun sends what the killed process queued (every epoch once, its
    checkpoint too), marks it FAILED and resumes from the checkpoint queued in the outage."""
    from mlbench.tracking._outbox import read_ops

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    outboxes = tmp_path / "outbox"
    env = {**clean_env(uri), "MLBENCH_OUTBOX": str(outboxes)}
    argv = _mlbench("train", *TRAIN, "--epochs", "300", "--tracking-uri", uri)
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def queued() -> list:
        return [op for folder in outboxes.glob("*") for op in read_ops(folder)]

    def epochs(ops: list) -> set[int]:
        return {m.step for op in ops for m in op.metrics if m.key == "val_acc1"}

    try:
        _wait(lambda: _checkpointed(uri, "train", 1), proc)
        stop_mlflow_server(server)
        _wait(lambda: len(epochs(queued())) >= 3 and any(op.path for op in queued()), proc)
        proc.kill()
        assert proc.wait() == -9
        (outbox,) = outboxes.iterdir()
        ops = read_ops(outbox)
        last = max(epochs(ops))
        checkpoint = max(int(op.tags.get("mlbench.checkpoint_epoch", 0)) for op in ops)
        server = start_mlflow_server(tmp_path, port)
        (killed,) = _runs(uri, "train")
        client = MlflowClient(uri)
        assert len(client.get_metric_history(killed.info.run_id, "val_acc1")) < last

        again = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=900)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "Traceback" not in again.stderr
        (line,) = [x for x in again.stderr.splitlines() if "before it died" in x]
        assert f"sent {len(ops)} requests" in line and str(outbox) in line
        assert not outbox.exists()
        for key in ("val_acc1", "train_loss", "lr"):
            curve = client.get_metric_history(killed.info.run_id, key)
            assert sorted(m.step for m in curve) == list(range(1, last + 1)), key
        runs = {r.info.run_id: r for r in _runs(uri, "train")}
        assert runs[killed.info.run_id].info.status == "FAILED"
        (resumed,) = [r for r in runs.values() if r.info.run_id != killed.info.run_id]
        assert resumed.info.status == "FINISHED"
        assert resumed.data.tags["mlbench.resumed_from"] == killed.info.run_id
        assert resumed.data.tags["mlbench.resumed_epoch"] == str(checkpoint)
    finally:
        proc.kill()
        stop_mlflow_server(server)


@pytest.mark.slow
def test_a_killed_prune_leaves_no_run_running_and_its_rerun_resumes(tmp_path):
    """kill -9 of `prune` while it trains the base model: the rerun marks the killed
    `prune` and `train` runs FAILED with the reason, says so, and resumes the training."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # 300 short epochs (a checkpoint each): a fast machine must not finish training between
    # two polls of the store, or nothing is left running to kill
    argv = _mlbench("prune", *tiny_argv(base_epochs=300), "--checkpoint-every", "0",
                    "--tracking-uri", uri)
    MlflowClient(uri).search_experiments()  # create the store before polling it
    proc = subprocess.Popen(argv, cwd=REPO, env=clean_env(uri), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait(lambda: _checkpointed(uri, "train", 2), proc)
    proc.kill()
    assert proc.wait() == -9
    killed = {r.info.run_id for r in _runs(uri)}
    assert len(killed) == 2
    assert [r.info.status for r in _runs(uri)] == ["RUNNING"] * 2

    report = subprocess.run(_mlbench("report", "--tracking-uri", uri, "--output",
                                     str(tmp_path / "report")), cwd=REPO, env=clean_env(uri),
                            capture_output=True, text=True, timeout=300)
    assert report.stderr.count("was left RUNNING") == 2  # the report never shows them live
    assert all(r.info.status == "FAILED" for r in _runs(uri))
    again = subprocess.run(argv, cwd=REPO, env=clean_env(uri), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    runs = _runs(uri)
    for run in runs:
        if run.info.run_id in killed:
            assert run.info.status == "FAILED"
            assert "process" in run.data.tags["mlbench.failed_reason"]
        else:
            assert run.info.status == "FINISHED"
    (train,) = [r for r in runs if r.info.run_id not in killed
                and r.data.tags["mlbench.stage"] == "train"]
    assert train.data.tags["mlbench.resumed_from"] in killed
    (line,) = [x for x in again.stderr.splitlines() if "resumes from the checkpoint" in x]
    assert "base-lenet-synthetic-s0" in line and "after epoch" in line


def test_several_processes_open_one_fresh_sqlite_store_together(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = ("from mlbench.config import TrackingConfig\nfrom mlbench.tracking import Tracker\n"
            f"print(Tracker(TrackingConfig(tracking_uri={uri!r})).experiment_id())")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=clean_env(uri),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in results]
    assert {out.strip() for out, _ in results} == {"0"}
    assert Path(f"{tmp_path / 'fresh.db'}.lock").exists()


def test_a_run_is_dead_when_its_process_is_gone_or_its_far_heartbeat_stopped():
    """On the owner's host the process itself is checked (no clock); from another host
    only a heartbeat older than the grace counts."""
    from mlbench.tracking._liveness import dead_because, owner_tag

    now = time.time()
    assert dead_because(owner_tag(), f"{now - 10**6:.0f}", now) is None  # alive: this one
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host, boot, _, _ = owner_tag().split("|")
    dead = f"{host}|{boot}|{int(gone.stdout)}|12345"
    assert "is gone" in dead_because(dead, f"{now:.0f}", now)  # a fresh beat changes nothing
    reused = f"{host}|{boot}|{os.getpid()}|1"  # this pid, but started at another time
    assert "another's now" in dead_because(reused, f"{now:.0f}", now)
    far = f"other-host|{boot}|{os.getpid()}|1"
    assert dead_because(far, f"{now - 60:.0f}", now, grace_s=600) is None
    assert "no heartbeat from other-host" in dead_because(far, f"{now - 601:.0f}", now,
                                                          grace_s=600)


def test_a_download_waits_out_an_outage_and_a_missing_artifact_is_said_at_once(
        switch, tmp_path):
    """A base model's weights fetched while the server fails arrive once it is back (the
    cell that began in an outage used to fail, be redone and leave a FAILED run); an
    artifact that is not there is one ConfigError at once, not a wait."""
    import threading

    from mlbench.config import TrackingConfig
    from mlbench.errors import ConfigError
    from mlbench.tracking import Tracker

    server, proxy, real = switch
    client = MlflowClient(real)
    run = client.create_run(client.create_experiment("downloads"))
    (tmp_path / "weights.txt").write_text("w")
    client.log_artifact(run.info.run_id, str(tmp_path / "weights.txt"))
    tracker = Tracker(TrackingConfig(tracking_uri=proxy, experiment="downloads"))
    with pytest.raises(ConfigError, match="has no artifact 'nothing.txt'"):
        tracker.download(run.info.run_id, "nothing.txt")
    back = threading.Event()

    def come_back() -> None:
        server.failing.clear()
        back.set()

    server.failing.set()
    threading.Timer(3.0, come_back).start()
    path = tracker.download(run.info.run_id, "weights.txt")
    assert back.is_set() and path.read_text() == "w"  # fetched once the server was back
