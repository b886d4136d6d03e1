"""End to end: `mlflow run` of the project, and logging to a real `mlflow server`.

(A refused `mlflow run` is tests/test_entry_points.py's, beside the other doors.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import REPO, clean_env, tiny_argv

pytestmark = pytest.mark.slow
MLFLOW = str(Path(sys.executable).parent / "mlflow")


_env = clean_env


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
    # not on a terminal: no progress bars, one flushed line per fine-tuning epoch instead
    assert "\r" not in proc.stderr
    assert [n for n in range(1, 6) if f"fine-tune layer_grad-c8-s0 epoch {n}/5" in proc.stderr
            ] == [1, 2, 3, 4, 5]


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
