"""A tracking server other machines can reach safely: MLflow's basic-auth app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from mlflow import MlflowClient

from tests.conftest import MLFLOW, clean_env, free_port, start_mlflow_server, stop_mlflow_server
from tests.test_sweep import sweep_argv

PASSWORD = "worker-secret-0123"  # noqa: S105 - a test server's admin password
SWEEPS = "auth-sweeps"  # the first test's experiment; the worker flow writes to Default


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One basic-auth `mlflow server` (admin/PASSWORD, default READ) for both tests."""
    folder = tmp_path_factory.mktemp("auth")
    ini = folder / "auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\n"
        f"admin_username = admin\nadmin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    port = free_port()
    server = start_mlflow_server(folder, port, [
        "env", f"MLFLOW_AUTH_CONFIG_PATH={ini}", "MLFLOW_FLASK_SERVER_SECRET_KEY=test-only",
        MLFLOW, "server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port",
        str(port), "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"])
    yield f"http://127.0.0.1:{port}"
    stop_mlflow_server(server)


@pytest.mark.slow
def test_a_basic_auth_server_takes_a_sweep_with_credentials_and_refuses_one_without(
        auth_server, tmp_path, monkeypatch):
    uri = auth_server
    argv = [sys.executable, "-m", "mlbench", *sweep_argv(
        strategies="global_weight", compressions="2", seeds="0"), "--tracking-uri", uri,
        "--experiment", SWEEPS]
    refused = subprocess.run(argv, cwd=tmp_path, env=clean_env(uri), capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()  # one clear line, no traceback
    assert "credentials" in line and "MLFLOW_TRACKING_USERNAME" in line
    env = {**clean_env(uri), "MLFLOW_TRACKING_USERNAME": "admin",
           "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert PASSWORD not in done.stdout + done.stderr
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(SWEEPS).experiment_id])
    assert {r.data.tags["mlbench.stage"] for r in runs} == {"sweep", "train", "prune"}
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:  # the password is in no param or tag
        assert not [v for v in {**run.data.params, **run.data.tags}.values()
                    if PASSWORD in v]


@pytest.mark.slow
def test_a_worker_user_is_refused_in_one_line_until_granted_then_writes(auth_server,
                                                                         tmp_path):
    """The README's worker flow: a non-admin user writing to Default gets one line naming
    the user, the experiment and the `grant` command; after it, the same command works.
    Credentials in the URI work too and are shown nowhere."""
    from mlflow.server import get_app_client

    uri = auth_server
    port = uri.rsplit(":", 1)[1]
    worker_password = "worker-pass-4567"  # noqa: S105 - a test user's
    admin = {**clean_env(uri), "MLFLOW_TRACKING_USERNAME": "admin",
             "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    worker = {**clean_env(uri), "MLFLOW_TRACKING_USERNAME": "worker",
              "MLFLOW_TRACKING_PASSWORD": worker_password}
    # mlp: a registered model of its own (the admin's sweep above registered the lenet one)
    train = [sys.executable, "-m", "mlbench", "train", "--dataset", "synthetic",
             "--synthetic-shape", "1x8x8", "--synthetic-classes", "4", "--synthetic-samples",
             "192", "--model", "mlp", "--epochs", "2", "--batch-size", "32", "--device",
             "cpu"]
    monkey = pytest.MonkeyPatch()
    with monkey.context() as m:
        m.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        m.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
        get_app_client("basic-auth", tracking_uri=uri).create_user("worker", worker_password)
    refused = subprocess.run([*train, "--tracking-uri", uri], cwd=tmp_path, env=worker,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if "403" in x]
    assert "user 'worker'" in line and "experiment 'Default'" in line
    assert "python -m mlbench grant --user worker --experiment Default" in line

    granted = subprocess.run([sys.executable, "-m", "mlbench", "grant", "--user", "worker",
                              "--experiment", "Default", "--tracking-uri", uri],
                             cwd=tmp_path, env=admin, capture_output=True, text=True,
                             timeout=300)
    assert granted.returncode == 0, granted.stderr[-3000:]
    assert "worker: EDIT on experiment 'Default'" in granted.stdout

    in_uri = f"http://worker:{worker_password}@127.0.0.1:{port}"
    done = subprocess.run([*train, "--tracking-uri", in_uri], cwd=tmp_path,
                          env=clean_env(""), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert worker_password not in done.stdout + done.stderr
    assert "worker:***@127.0.0.1" in done.stderr  # the one warning line
    client = MlflowClient(in_uri)
    (run,) = client.search_runs(["0"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.user"] in ("worker", run.data.tags["mlflow.user"])
    assert not [v for v in {**run.data.params, **run.data.tags}.values()
                if worker_password in v]
