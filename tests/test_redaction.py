"""No credential is logged (issue 20, point 6): a sweep and a tune whose ``--storage`` is a
real PostgreSQL database behind a password-protected role write that password into no
param, tag, run name, artifact, and no line they print."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mlflow import MlflowClient

from tests._postgres import PostgresCluster
from tests.conftest import REPO, clean_env
from tests.test_sweep import sweep_argv
from tests.test_tuning import TUNE_TINY


def _leaks(uri: str, secret: str) -> list[str]:
    """Where ``secret`` shows in the store at ``uri``: every run's name, params, tags and
    artifact files."""
    client = MlflowClient(uri)
    found = []
    for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
        where = f"{run.data.tags.get('mlbench.stage')} run {run.info.run_name}"
        if secret in (run.info.run_name or ""):
            found.append(f"{where}: its name")
        found += [f"{where}: param {k}" for k, v in run.data.params.items() if secret in v]
        found += [f"{where}: tag {k}" for k, v in run.data.tags.items() if secret in v]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(client.download_artifacts(run.info.run_id, "", tmp))
            found += [f"{where}: artifact {f.relative_to(folder)}" for f in folder.rglob("*")
                      if f.is_file() and secret.encode() in f.read_bytes()]
    return found


def _run(argv: list[str], uri: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "mlbench", *argv], cwd=cwd,
                          env={**clean_env(uri), "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_a_password_in_storage_reaches_no_param_tag_name_artifact_or_line_of_sweep_and_tune(
        postgres: PostgresCluster, tmp_path):
    queue = postgres.create_database("redacted_sweep")  # a role of its own, a password
    study = postgres.create_database("redacted_tune")
    secrets = {urlsplit(url).password for url in (queue, study)}
    assert all(secrets) and len(secrets) == 2
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = _run([*sweep_argv(strategies="global_weight", compressions="4", seeds="0"),
                  "--tracking-uri", uri, "--storage", queue], uri, tmp_path)
    tune = _run(["tune", *[f"--{k.replace('_', '-')}={v}" for k, v in TUNE_TINY.items()],
                 "--strategies", "random", "--trials", "2", "--seeds", "0",
                 "--tracking-uri", uri, "--storage", study], uri, tmp_path)

    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert {"sweep", "prune", "train", "tune", "trial"} <= {
        r.data.tags.get("mlbench.stage") for r in runs}
    for name in ("redacted_sweep", "redacted_tune"):  # recorded, with the password hidden
        shown = [v for r in runs for v in (*r.data.params.values(), *r.data.tags.values())
                 if name in v]
        assert shown and all(":***@" in v for v in shown), shown
    for secret in secrets:
        assert _leaks(uri, secret) == []
        for done in (sweep, tune):
            assert [x for x in (done.stdout + done.stderr).splitlines() if secret in x] == []
