"""The outbox on local disk (issue 20): what the background sender queues survives a kill -9
of its process during an outage, and is delivered exactly once, by `resend` or by the
next command on the store. Real sqlite stores, a real killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlbench.errors import ConfigError
from tests.conftest import REPO, clean_env, free_port

STEPS = 6


def _kill_while_queued(tmp_path: Path, store: str, run_id: str, other: str) -> Path:
    """A process queues STEPS epochs of metrics, a checkpoint and a tag for ``run_id`` of
    ``store`` (and one metric for ``other``) while its server (a port nobody listens on)
    is away; it is killed -9 then. Returns the outbox it left."""
    checkpoint = tmp_path / "checkpoint.safetensors"
    checkpoint.write_bytes(b"weights")
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from mlflow import MlflowClient
        from mlflow.entities import Metric, RunTag
        from mlbench.tracking._outbox import Outbox
        from mlbench.tracking._sender import Link, Sender

        away = "http://127.0.0.1:{free_port()}"  # nobody answers: an outage
        sender = Sender(MlflowClient(away), Link(away), Outbox(uri={store!r}))
        for step in range(1, {STEPS} + 1):
            sender.send({run_id!r}, [Metric("val_acc1", step / 10, 1000 + step, step),
                                     Metric("lr", 0.1, 1000 + step, step)], [])
            if step == 3:
                sender.send_file({run_id!r}, Path({str(checkpoint)!r}), "checkpoint",
                                 tags={{"mlbench.checkpoint_epoch": "3"}}, slot="checkpoint")
        sender.send({run_id!r}, [], [RunTag("mlbench.note", "queued in the outage")])
        sender.send({other!r}, [Metric("val_acc1", 0.5, 1000, 1)], [])
        print("queued", flush=True)
        time.sleep(600)
    """)
    env = {**clean_env(store), "MLBENCH_OUTBOX": str(tmp_path / "outbox"),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "queued", proc.stderr.read()[-3000:]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (outbox,) = (tmp_path / "outbox").iterdir()
    return outbox


def _store_with_runs(tmp_path: Path) -> tuple[str, str, str]:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store)
    run, other = (client.create_run("0", run_name=n) for n in ("killed", "another"))
    return store, run.info.run_id, other.info.run_id


def _assert_every_epoch_once(store: str, run_id: str) -> None:
    client = MlflowClient(store)
    for key in ("val_acc1", "lr"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == list(range(1, STEPS + 1)), (key, steps)
    run = client.get_run(run_id)
    assert run.data.tags["mlbench.checkpoint_epoch"] == "3"
    assert run.data.tags["mlbench.note"] == "queued in the outage"
    assert [a.path for a in client.list_artifacts(run_id, "checkpoint")] == [
        "checkpoint/checkpoint.safetensors"]


def test_a_queue_killed_in_an_outage_is_on_disk_and_resend_sends_it_once(tmp_path):
    """kill -9 while the server is away: every queued request is in the journal; two that
    reached the server just before the kill (not yet marked sent) are not duplicated."""
    from mlbench.tracking._outbox import read_ops

    store, run_id, other = _store_with_runs(tmp_path)
    outbox = _kill_while_queued(tmp_path, store, run_id, other)
    ops = read_ops(outbox)
    assert sorted(m.step for op in ops if op.run_id == run_id for m in op.metrics
                  if m.key == "val_acc1") == list(range(1, STEPS + 1))
    assert [op.path.name for op in ops if op.path] == ["checkpoint.safetensors"]
    client = MlflowClient(store)
    for op in ops[:2]:  # delivered, then killed before the journal said so
        client.log_batch(run_id, metrics=op.metrics)

    sent = subprocess.run([sys.executable, "-m", "mlbench", "resend", str(outbox),
                           "--tracking-uri", store], cwd=REPO, env=clean_env(store),
                          capture_output=True, text=True, timeout=300)
    assert sent.returncode == 0, sent.stderr[-3000:]
    assert f"sent {len(ops)} requests" in sent.stdout
    assert not outbox.exists()
    _assert_every_epoch_once(store, run_id)


def test_the_next_tracker_on_the_store_sends_what_a_killed_process_queued(
        tmp_path, monkeypatch, capsys):
    from mlbench.config import TrackingConfig
    from mlbench.tracking import Tracker

    store, run_id, other = _store_with_runs(tmp_path)
    outbox = _kill_while_queued(tmp_path, store, run_id, other)
    MlflowClient(store).delete_run(other)  # deleted meanwhile: its metric is refused
    monkeypatch.setenv("MLBENCH_OUTBOX", str(tmp_path / "outbox"))
    Tracker(TrackingConfig(tracking_uri=store))
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "before it died" in x]
    assert f"sent {STEPS + 2} requests" in line and str(outbox) in line
    assert "1 refused: the store answered it with an error" in line
    assert not outbox.exists()
    _assert_every_epoch_once(store, run_id)


def test_a_live_process_outbox_is_not_resent_and_a_sent_queue_leaves_nothing(
        tmp_path, monkeypatch):
    from mlflow.entities import Metric

    from mlbench.tracking import resend
    from mlbench.tracking._outbox import Outbox
    from mlbench.tracking._sender import Link, Sender

    monkeypatch.setenv("MLBENCH_OUTBOX", str(tmp_path / "outbox"))
    store, run_id, _ = _store_with_runs(tmp_path)
    away = f"http://127.0.0.1:{free_port()}"
    waiting = Outbox(uri=away)
    waiting.queue(_op(run_id, Metric("val_acc1", 0.5, 1, 1)))
    with pytest.raises(ConfigError, match="is still running and sends it itself"):
        resend(waiting.folder, store)

    sender = Sender(MlflowClient(store), Link(store), Outbox(uri=store))
    for step in range(1, 4):
        sender.send(run_id, [Metric("val_acc1", step / 10, step, step)], [])
    sender.flush()
    assert not (sender.outbox.folder / "ops.jsonl").exists()  # all sent: the journal goes
    assert [m.step for m in MlflowClient(store).get_metric_history(run_id, "val_acc1")] == [
        1, 2, 3]


def _op(run_id: str, metric: object) -> object:
    from mlbench.tracking._outbox import Op

    return Op(run_id, metrics=[metric])
