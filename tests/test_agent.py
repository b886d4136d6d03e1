"""The tracking agent (issue 21): `prune` and `train` run their Tracker in a process of
their own, which imports MLflow while the command imports torch. Real processes, a real
sqlite store: the command never imports mlflow, its runs are its own (owner, worker),
the numbers are those of an in-process Tracker, and the agent lives and dies with it
(normal exit, kill -9, Ctrl-C). The RemoteTracker's contract is tested against a real
agent process from this one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlbench.config import TrackingConfig
from mlbench.errors import ConfigError, TrackingUnavailable
from mlbench.tracking import Agent, agent_wanted
from tests.conftest import REPO, clean_env, tiny_argv

# The CLI, then a line with this process's pid, whether mlflow was imported here, and
# its tracking agent's pid (the one child process it has before its exit lets it go).
WRAP = """\
import os, sys
from mlbench.cli import main
from mlbench._exit import exit_now
code = main(sys.argv[1:])
def parent(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1
kids = [p for p in os.listdir("/proc") if p.isdigit() and parent(p) == os.getpid()]
print("WRAP", os.getpid(), "mlflow" in sys.modules, ",".join(kids) or "-", flush=True)
exit_now(code)
"""
COMPARED = ("acc1", "acc5", "loss", "base_acc1", "pre_acc1", "compression", "params_nz",
            "flops_nz")


def _wrapped(uri: str, *argv: str, env: dict[str, str] | None = None
             ) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = subprocess.run([sys.executable, "-c", WRAP, *argv, "--tracking-uri", uri],
                          cwd=REPO, env=env or clean_env(uri), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRAP ")]
    return proc, line.split()[1:]


def _gone(pid: int, limit_s: float = 10.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited; its parent (init, once the command is gone) reaps it
            return True
        time.sleep(0.05)
    return False


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc/*/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _prune_runs(uri: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")


def test_a_prune_command_never_imports_mlflow_its_runs_are_its_own_and_the_numbers_match(
        tmp_path):
    """The command imports no mlflow; the run's owner and worker tags name the command's
    pid (not the agent's); the agent is gone once the command is; and the metrics are
    those of the same run with an in-process Tracker (MLBENCH_TRACKING_AGENT=0)."""
    uri = f"sqlite:///{tmp_path / 'agent.db'}"
    proc, (pid, mlflow_here, agent) = _wrapped(uri, "prune", *tiny_argv(base_epochs=2))
    assert mlflow_here == "False"
    assert agent != "-" and "," not in agent  # one agent, alive until the exit
    assert _gone(int(agent)), "the tracking agent outlived its command"
    (run,) = _prune_runs(uri)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlbench.worker"].endswith(f":{pid}")
    assert run.data.tags["mlbench.owner"].split("|")[2] == pid
    assert "acc1=" in proc.stdout

    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    env = {**clean_env(plain), "MLBENCH_TRACKING_AGENT": "0"}
    _, (_, mlflow_plain, no_agent) = _wrapped(plain, "prune", *tiny_argv(base_epochs=2),
                                              env=env)
    assert mlflow_plain == "True" and no_agent == "-"
    (same,) = _prune_runs(plain)
    for key in COMPARED:
        assert run.data.metrics[key] == same.data.metrics[key], key
    mine, theirs = dict(run.data.params), dict(same.data.params)
    assert mine.pop("base_run_id") != theirs.pop("base_run_id")  # each store its own base
    assert mine == theirs


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C"])
def test_the_agent_dies_with_its_command_and_the_run_ends_as_its_command_did(tmp_path, how):
    """kill -9 of the command takes the agent with it (the kernel's parent-death signal)
    and leaves the run RUNNING, marked FAILED by the next reaper as the command's death;
    Ctrl-C (SIGINT to the command alone) ends the run KILLED, exit 130, agent gone."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [sys.executable, "-m", "mlbench", "prune",
            *tiny_argv(base_epochs=1, epochs=3000, checkpoint_every=0), "--tracking-uri", uri]
    # SIGINT as a terminal gives it (a suite started in the background ignores it, and
    # so would the children it starts)
    proc = subprocess.Popen(argv, cwd=REPO, env=clean_env(uri), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = tmp_path / "mlflow.db"
    deadline = time.monotonic() + 300
    while True:  # wait for the prune run to be RUNNING (read only, without MLflow)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                rows = con.execute("SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = "
                                   "r.run_uuid AND t.key = 'mlbench.stage' AND "
                                   "t.value = 'prune'").fetchall()
        except sqlite3.Error:
            rows = []
        if rows == [("RUNNING",)]:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # into the fine-tuning epochs
    (agent,) = _children(proc.pid)
    if how == "kill -9":
        proc.kill()
        proc.communicate(timeout=60)
        assert _gone(agent), "the tracking agent outlived its killed command"
        from mlbench.tracking._liveness import reap_store

        (run,) = _prune_runs(uri)
        assert reap_store(uri) == [run.info.run_id]
        reason = MlflowClient(uri).get_run(run.info.run_id).data.tags["mlbench.failed_reason"]
        assert f"process {proc.pid} " in reason  # the command's death, not the agent's
    else:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-3000:]
        assert "interrupted" in err.strip().splitlines()[-1] and "Traceback" not in err
        assert _gone(agent)
        (run,) = _prune_runs(uri)
        assert run.info.status == "KILLED"


def test_agent_wanted_where_it_can_serve(monkeypatch):
    """In process with --log-model (the model would have to travel), under torchrun, and
    with MLBENCH_TRACKING_AGENT=0; in an agent otherwise."""
    monkeypatch.delenv("MLBENCH_TRACKING_AGENT", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert agent_wanted(log_model=False)
    assert not agent_wanted(log_model=True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not agent_wanted(log_model=False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MLBENCH_TRACKING_AGENT", "0")
    assert not agent_wanted(log_model=False)


@pytest.fixture
def remote(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    agent = Agent(uri)
    tracker = agent.tracker(TrackingConfig(tracking_uri=uri, experiment="remote"))
    yield tracker, MlflowClient(uri), agent
    agent.close()


def test_a_remote_run_ends_as_its_block_does_and_errors_keep_their_kind(remote):
    """Done: FINISHED with what was logged; an exception: FAILED, the same exception
    here; Ctrl-C: KILLED, KeyboardInterrupt here. mlbench's errors cross as themselves
    (a missing artifact is a ConfigError), MLflow's as a RuntimeError that names them."""
    tracker, client, _ = remote
    with tracker.run("prune", "done") as done:
        tracker.log_params({"strategy": "global_weight", "compression": 4.0})
        tracker.log_metrics({"acc1": 0.5})
        tracker.log_metrics({"val_acc1": 0.25}, step=1, wait=False)
        tracker.set_tags({"mlbench.note": "yes"})
    run = client.get_run(done)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"strategy": "global_weight", "compression": "4"}
    assert run.data.metrics == {"acc1": 0.5, "val_acc1": 0.25}
    assert run.data.tags["mlbench.note"] == "yes"
    assert tracker.find_finished("prune", "no-such-hash") is None

    with pytest.raises(ValueError, match="boom"), tracker.run("prune", "failed") as failed:
        raise ValueError("boom")
    assert client.get_run(failed).info.status == "FAILED"
    with pytest.raises(KeyboardInterrupt), tracker.run("prune", "killed") as killed:
        raise KeyboardInterrupt
    assert client.get_run(killed).info.status == "KILLED"

    with pytest.raises(ConfigError, match="has no artifact"):
        tracker.download(done, "nothing/here.safetensors")
    with pytest.raises(RuntimeError, match="MlflowException"):
        tracker.metrics_of("0" * 32)


def test_a_dead_agent_is_one_clear_error_not_a_hang(remote):
    """The agent killed under a command: its next tracking call raises TrackingUnavailable
    naming the agent's exit and where its queued work is kept."""
    tracker, _, agent = remote
    agent.proc.kill()
    agent.proc.wait(timeout=30)
    with pytest.raises(TrackingUnavailable, match="tracking agent .* exited"):
        tracker.find_finished("prune", "x")


def test_bad_input_found_in_the_data_leaves_no_store_and_no_agent(tmp_path):
    """The agent starts before the data is read; a data directory without the files is
    still one line and exit 2, no store is made, and the agent is let go at once."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run([sys.executable, "-c", WRAP, "prune", "--dataset", "mnist",
                           "--data-dir", str(tmp_path / "nothing"), "--tracking-uri", uri],
                          cwd=REPO, env=clean_env(uri), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.count("\n") == 1 and "no MNIST files" in proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRAP ")]
    agent = line.split()[3]
    assert agent != "-" and _gone(int(agent))
    assert not (tmp_path / "mlflow.db").exists()


def test_what_crosses_to_the_agent_is_json_and_nothing_heavy_crosses(remote):
    """No pickle between the command and its agent: paths, tuples, numpy scalars cross as
    values; a tensor or a model is refused where it is sent (TypeError), and the agent
    serves on."""
    import numpy as np
    import torch

    tracker, client, _ = remote
    with tracker.run("prune", "values") as run_id:
        tracker.log_metrics({"acc1": np.float32(0.25), "loss": torch.tensor(1.5)})
        with pytest.raises(TypeError, match="cannot carry Tensor"):
            tracker.log_metrics({"acc1": torch.ones(3)})
        with pytest.raises(TypeError, match="cannot carry"):
            tracker.log_dict({"model": torch.nn.Linear(2, 2)}, "config.json")
    assert client.get_run(run_id).data.metrics == {"acc1": 0.25, "loss": 1.5}
    assert tracker.find_finished("prune", "none") is None  # still serving
