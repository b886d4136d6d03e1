"""End to end: `mlflow run` of the project, and logging to a real `mlflow server`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import REPO, free_port, tiny_argv

pytestmark = pytest.mark.slow
MLFLOW = str(Path(sys.executable).parent / "mlflow")


def _env(uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = uri
    # `mlflow run --env-manager local` runs `python -m mlbench`: this interpreter's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _runs(uri: str, stage: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`mlbench.stage` = '{stage}'")


def test_mlflow_run_with_the_defaults(tmp_path: Path):
    """The README's main command: defaults on digits, tracked in the local store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [MLFLOW, "run", str(REPO), "--env-manager", "local", "-P", "strategy=layer_grad"],
        cwd=tmp_path, env=_env(uri), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = _runs(uri, "prune")
    (train,) = _runs(uri, "train")
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "layer_grad-c8-s0"
    assert run.data.tags.get("mlflow.project.entryPoint") == "main"
    assert train.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert train.info.experiment_id == run.info.experiment_id
    m = run.data.metrics
    assert m["base_acc1"] > 0.9  # digits: chance is 0.1
    assert m["acc1"] > 0.7  # 8x with layer-wise allocation: a visible but modest drop
    assert abs(m["params_nz"] - m["params"] / 8) <= 1
    assert run.data.params["strategy"] == "layer_grad"
    assert run.data.params["base_run_id"] == train.info.run_id
    names = {a.path for a in MlflowClient(uri).list_artifacts(run.info.run_id)}
    assert {"masks.safetensors", "layers.csv", "config.json"} <= names
    assert "acc1=" in proc.stdout
    assert "fine-tune" not in proc.stderr  # no progress bars when not on a terminal


def test_mlflow_run_with_bad_input_ends_failed(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [MLFLOW, "run", str(REPO), "--env-manager", "local", "-P", "strategy=magic"],
        cwd=tmp_path, env=_env(uri), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "unknown strategy 'magic'; choose one of" in proc.stderr
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(ids)
    assert run.info.status == "FAILED"


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on a free loopback port, with its own store and artifacts."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=_env(""), start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail((tmp_path / "server.log").read_text()[-2000:])
            time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_prune_logs_to_a_real_mlflow_server(mlflow_server: str, tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "mlbench", "prune", *tiny_argv(strategy="global_grad"),
         "--tracking-uri", mlflow_server, "--experiment", "served"],
        cwd=tmp_path, env=_env(""), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to a local store
    (run,) = _runs(mlflow_server, "prune")
    assert run.info.status == "FINISHED" and run.info.run_name == "global_grad-c4-s0"
    assert abs(run.data.metrics["compression"] - 4) < 0.01
    client = MlflowClient(mlflow_server)
    assert client.get_experiment(run.info.experiment_id).name == "served"
    (version,) = client.search_model_versions("name='mlbench-synthetic-lenet'")
    assert version.run_id == run.data.params["base_run_id"]
    local = client.download_artifacts(run.info.run_id, "masks.safetensors", str(tmp_path))
    assert Path(local).stat().st_size > 0  # artifacts went through the server
