"""What logging to a remote MLflow server costs a sweep, as a share of its wall time.

Starts a real ``mlflow server`` on a free 127.0.0.1 port, runs a small sweep against it
in this process, and times every call mlbench makes to MLflow: every public method of
``Tracker`` and the starting and ending of runs (wrapped here, in the benchmark only).
The figure is (time inside tracking calls) / (sweep wall time). Tracking reads (finding
finished cells and base models), the registration of the base model and the artifact
uploads count against mlbench too.

Cells here are small (LeNet on digits, a few seconds of compute each), so this is a
worst case: real cells (ResNets on CIFAR, minutes each) make the same calls.

Run:
    python benchmarks/tracking_overhead.py [--epochs 5] [--cells-per-seed 4]
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow

from mlbench.config import RunConfig, TrackingConfig
from mlbench.sweep import Grid, run_sweep
from mlbench.tracking import Checkpoints, Registry, Tracker
from mlbench.tuning import Job, WorkQueue

SPENT: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its wall time added to SPENT[name] (nested calls counted once)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(timed, "depth", 0):
            return fn(*args, **kwargs)
        timed.depth = 1  # type: ignore[attr-defined]
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start
            timed.depth = 0  # type: ignore[attr-defined]

    return wrapper


def instrument() -> None:
    """Wrap every MLflow-facing call mlbench makes."""
    for name in ("log_params", "log_metrics", "flush", "log_dict", "log_file", "download",
                 "find_finished", "log_history", "set_tags", "experiment_id", "create_run",
                 "end_run", "log_to", "fail_if_running"):
        setattr(Tracker, name, timed(name, getattr(Tracker, name)))
    for cls, names in ((Registry, ("find", "register")), (Checkpoints, ("find", "log"))):
        for name in names:
            setattr(cls, name, timed(f"{cls.__name__.lower()}.{name}", getattr(cls, name)))
    for cls, names in ((WorkQueue, ("progress", "take", "enqueue")), (Job, ("complete",))):
        for name in names:  # coordination: the sweep's queue on its Optuna storage
            setattr(cls, name, timed(f"queue.{name}", getattr(cls, name)))
    mlflow.start_run = timed("start_run", mlflow.start_run)
    mlflow.end_run = timed("end_run", mlflow.end_run)
    mlflow.set_tags = timed("set_tags", mlflow.set_tags)
    mlflow.set_tag = timed("set_tag", mlflow.set_tag)


def start_server(folder: Path, port: int = 0) -> tuple[subprocess.Popen, str]:
    """An ``mlflow server`` on ``folder``'s store (``port`` 0: a free one) once healthy."""
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    proc = subprocess.Popen(
        [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        # no Huey job consumers (MLflow 3's GenAI jobs): ~7 processes mlbench never uses
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs per cell")
    parser.add_argument("--base-epochs", type=int, default=20)
    args = parser.parse_args()
    instrument()
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(Path(tmp))
        try:
            cfg = RunConfig.from_flat({"epochs": args.epochs, "base_epochs": args.base_epochs,
                                       "device": "cpu"})
            grid = Grid(strategies=("global_weight", "layer_grad"), compressions=(2.0, 8.0),
                        seeds=(0,))
            start = time.perf_counter()
            run_sweep(cfg, grid, TrackingConfig(tracking_uri=url, experiment="bench"),
                      storage=f"journal:{Path(tmp) / 'optuna.journal'}")
            wall = time.perf_counter() - start
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
    total = sum(SPENT.values())
    settle = sum(v for k, v in SPENT.items() if k.startswith("queue."))
    print(f"sweep: 4 cells + 1 base model, {args.epochs} fine-tuning epochs each, "
          f"wall {wall:.1f} s")
    print(f"{'call':<20}{'seconds':>10}{'share':>9}")
    for name, spent in sorted(SPENT.items(), key=lambda kv: -kv[1]):
        print(f"{name:<20}{spent:>10.2f}{spent / wall:>9.2%}")
    print(f"{'all tracking':<20}{total:>10.2f}{total / wall:>9.2%}")
    print(f"{'without the queue':<20}{total - settle:>10.2f}{(total - settle) / wall:>9.2%}"
          "  (the queue's calls are coordination on the Optuna storage, not MLflow)")


if __name__ == "__main__":
    main()
