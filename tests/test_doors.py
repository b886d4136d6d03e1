"""Every door writes the same run: `mlflow run .` and `python -m mlbench prune`.

The same recipe through both must give identical params (as strings in the store), the
same config hash and one experiment, so the report, the UI's compare view and
`search_runs` treat them as one recipe.
"""

from __future__ import annotations

import subprocess

import pytest
from mlflow import MlflowClient

from mlbench.cli import main
from mlbench.tracking import query_prune_runs
from tests.conftest import MLFLOW, REPO, TINY, clean_env, tiny_argv


def prune_runs(uri: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, "tags.`mlbench.stage` = 'prune'", order_by=["start_time"])


@pytest.mark.slow
def test_mlflow_run_and_the_cli_write_identical_params_hash_and_experiment(
        tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # booleans as the MLproject spells them (true/false); the CLI is given Python's
    given = {**TINY, "base_epochs": 1, "compression": 4, "augment": "true", "amp": "false"}
    project_argv = [MLFLOW, "run", str(REPO), "--env-manager", "local"]
    for key, value in given.items():
        project_argv += ["-P", f"{key}={value}"]
    # the CLI first: a CLI `prune` of a configuration that already FINISHED prints that
    # run instead of making another; `mlflow run` (which opens its run itself) makes one
    monkeypatch.chdir(tmp_path)
    argv = tiny_argv(base_epochs=1, compression=4.0, augment="True", amp="False")
    assert main(["prune", *argv, "--tracking-uri", uri]) == 0
    proc = subprocess.run(project_argv, cwd=tmp_path, env=clean_env(uri), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mlbench: `mlflow run` logged" not in proc.stderr  # nothing spelt differently

    by_cli, by_door = prune_runs(uri)
    assert by_door.data.tags["mlflow.project.entryPoint"] == "main"
    assert "mlflow.project.entryPoint" not in by_cli.data.tags
    assert by_door.data.params == by_cli.data.params
    assert by_door.data.params["augment"] == "true" and by_door.data.params["amp"] == "false"
    assert by_door.data.params["compression"] == "4"
    hashes = {r.data.tags["mlbench.config_hash"] for r in (by_door, by_cli)}
    assert len(hashes) == 1
    assert by_door.info.experiment_id == by_cli.info.experiment_id
    client = MlflowClient(uri)
    assert client.get_experiment(by_door.info.experiment_id).name == "Default"
    # the report's default (no --experiment: every experiment) reads both
    records = query_prune_runs(uri, [])
    assert {r["run_id"] for r in records.runs} == {by_door.info.run_id, by_cli.info.run_id}


def test_a_value_mlflow_run_spelt_otherwise_is_named_in_one_line(capsys):
    from mlbench.tracking._params import warn_differing_text

    warn_differing_text({"augment": "True", "lr": "0.03", "strategies": "''"},
                        {"augment": "true", "lr": "0.03", "strategies": "a,b"})
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mlbench: `mlflow run` logged augment='True' (mlbench writes 'true'); "
                   "write -P values that way so runs from every door compare as one recipe"]
