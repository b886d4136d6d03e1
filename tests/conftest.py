"""Shared fixtures: small real models and batches, and real MLflow stores in temp dirs."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from mlbench.masks import prunable_parameters
from mlbench.models import classifier_name, create_model
from tests._postgres import PostgresCluster, find_bin_dir

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """The project's read-only data (real MNIST, literature CSVs): ``../shared/data`` from
    the repository root (a worktree one level deeper finds it at ``../../shared/data``),
    or $MLBENCH_SHARED_DATA."""
    if os.environ.get("MLBENCH_SHARED_DATA"):
        return Path(os.environ["MLBENCH_SHARED_DATA"]).resolve()
    for root in (REPO.parent, REPO.parent.parent):
        if (root / "shared" / "data").is_dir():
            return (root / "shared" / "data").resolve()
    return (REPO.parent / "shared" / "data").resolve()


SHARED_DATA = _shared_data()

# A tiny but real run: synthetic 1x8x8 data, 4 classes, LeNet, a few epochs.
TINY = {
    "dataset": "synthetic",
    "synthetic_shape": "1x8x8",
    "synthetic_classes": 4,
    "synthetic_samples": 192,
    "model": "lenet",
    "base_epochs": 8,
    "base_lr": 0.1,
    "epochs": 1,
    "batch_size": 32,
    "base_batch_size": 32,
    "device": "cpu",
    "compression": 4.0,
}


def tiny_argv(**overrides: object) -> list[str]:
    """TINY (plus overrides; None drops a key) as CLI options."""
    values = {**TINY, **overrides}
    argv: list[str] = []
    for key, value in values.items():
        if value is not None:  # None: leave the option out
            argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


@pytest.fixture
def lenet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("lenet", (1, 8, 8), 4)


@pytest.fixture
def prunable(lenet: nn.Module) -> dict[str, nn.Parameter]:
    return prunable_parameters(lenet, classifier_name(lenet))


@pytest.fixture
def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g))
            for _ in range(2)]


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True, scope="session")
def _data_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded datasets are cached for the session in a folder of its own (subprocesses
    inherit it), never in the user's ``~/.cache``."""
    if "MLBENCH_DATA_CACHE" not in os.environ:
        os.environ["MLBENCH_DATA_CACHE"] = str(tmp_path_factory.mktemp("data-cache"))


@pytest.fixture(autouse=True)
def _restore_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Tracker exports MLFLOW_TRACKING_URI for subprocesses; undo it after each test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


MLFLOW = str(Path(sys.executable).parent / "mlflow")


def clean_env(uri: str) -> dict[str, str]:
    """This environment without MLFLOW_* settings, tracking to ``uri``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = uri
    # `mlflow run --env-manager local` runs `python -m mlbench`: this interpreter's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_mlflow_server(folder: Path, port: int,
                        argv: list[str] | None = None) -> subprocess.Popen:
    """A real `mlflow server` on 127.0.0.1:port over folder's store; waits until healthy.

    argv replaces the default command (a sqlite store in folder), e.g. for PostgreSQL.
    """
    log = (folder / "server.log").open("a")
    proc = subprocess.Popen(
        argv or [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port),
                 "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
                 "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
        # MLflow 3's server also starts ~7 Huey job consumers (GenAI jobs, which mlbench
        # never uses), each importing mlflow: minutes of CPU on a 2-core CI machine.
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**clean_env(""), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_mlflow_server(proc)
                pytest.fail((folder / "server.log").read_text()[-2000:])
            time.sleep(0.5)


def stop_mlflow_server(proc: subprocess.Popen) -> None:
    """Stop the server and every process it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on a free loopback port, with its own store and artifacts."""
    port = free_port()
    proc = start_mlflow_server(tmp_path, port)
    yield f"http://127.0.0.1:{port}"
    stop_mlflow_server(proc)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster on a free loopback port, for the whole test session."""
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    cluster = PostgresCluster.start(free_port())
    yield cluster
    cluster.stop()


_databases = itertools.count()


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> str:
    """A fresh, empty database of its own for this test: postgresql://u:pw@127.0.0.1:port/db."""
    return postgres.create_database(f"test_{next(_databases)}")
