"""Sweeps under faults, and 2 workers against 1, with a real ``mlflow server``.

    python benchmarks/sweep_faults.py workers     # one grid with --workers 1 and 2
    python benchmarks/sweep_faults.py kill        # kill -9 random workers at 10 moments
    python benchmarks/sweep_faults.py outage      # the server away for 3 minutes mid-run

``workers``: the same grid, in a fresh store each time, by ``sweep --workers 1`` and
``--workers 2``: wall time and the throughput ratio (this machine's core count printed).

``kill``: two ``sweep`` worker processes (as on two machines) on one journal storage and
one ``mlflow server``; at 10 random moments a random worker gets SIGKILL and a fresh one
is started in its place; then one final rerun. Counts cells FINISHED twice (must be 0),
cells never finished (0), runs left RUNNING after the final rerun (0), and the longest
time a dead worker's cell waited before another worker took it.

``outage``: a sweep of one cell, checkpointing every epoch, against an ``mlflow server``
that is stopped once the prune run has checkpointed epoch 4 and started again (same
port, same store) ``--outage`` seconds later: the run's status, its epochs on the
server, the epoch times before, during and after the outage (from the epochs' metric
timestamps, taken by the client when each epoch ended), the lines the user saw, and how
long after the server came back the sweep ended.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.queue_scale import load, start_server  # noqa: E402

GRID = ["--dataset", "synthetic", "--synthetic-shape", "1x8x8", "--synthetic-classes", "4",
        "--synthetic-samples", "512", "--model", "lenet", "--base-epochs", "4",
        "--batch-size", "32", "--base-batch-size", "32", "--device", "cpu"]


def sweep(folder: Path, uri: str, *more: str) -> list[str]:
    return [sys.executable, "-m", "mlbench", "sweep", *GRID, "--tracking-uri", uri,
            "--storage", f"journal:{folder / 'q.journal'}", *more]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def workers() -> None:
    print(f"cores: {os.cpu_count()}")
    print("| workers | cells | seconds | throughput vs 1 worker | load average |\n"
          "|---|---|---|---|---|")
    times = {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            cmd = sweep(folder, f"sqlite:///{folder / 'mlflow.db'}", "--workers", str(n),
                        "--strategies", "global_weight,layer_weight,random,global_grad",
                        "--compressions", "2,4,8", "--seeds", "0", "--epochs", "3")
            start = time.perf_counter()
            subprocess.run(cmd, cwd=folder, env=env(), check=True, capture_output=True)
            times[n] = time.perf_counter() - start
        print(f"| {n} | 12 | {times[n]:.1f} | {times[1] / times[n]:.2f} | {load()} |", flush=True)


def kill(moments: int, grace: int, seed: int) -> None:
    from mlflow import MlflowClient
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, uri = start_server(folder)
        cmd = sweep(folder, uri, "--grace", str(grace), "--epochs", "8",
                    "--strategies", "global_weight,layer_weight,random,global_grad",
                    "--compressions", "2,4,8", "--seeds", "0,1")

        def start() -> subprocess.Popen:
            return subprocess.Popen(cmd, cwd=folder, env=env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)

        try:
            procs = [start(), start()]
            kills: list[float] = []
            for _ in range(moments):
                time.sleep(rng.uniform(8, 25))  # a started worker holds a cell by then
                i = rng.randrange(2)
                os.killpg(procs[i].pid, signal.SIGKILL)
                procs[i].wait()
                kills.append(time.time())
                procs[i] = start()
            for p in procs:
                p.wait()
            final = subprocess.run(cmd, cwd=folder, env=env(), capture_output=True, text=True)
            client = MlflowClient(uri)
            ids = [e.experiment_id for e in client.search_experiments()]
            runs = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")
            finished = Counter(r.data.tags["mlbench.config_hash"] for r in runs
                               if r.info.status == "FINISHED")
            running = [r for r in client.search_runs(ids) if r.info.status == "RUNNING"]
            storage = JournalStorage(JournalFileBackend(str(folder / "q.journal")))
            (study,) = storage.get_all_studies()
            trials = storage.get_all_trials(study._study_id)
            waits = []
            for t in trials:
                retry_of = t.system_attrs.get("failed_trial")
                if retry_of is None or t.datetime_start is None:
                    continue
                started = t.datetime_start.timestamp()
                before = [k for k in kills if k <= started]
                if before:
                    waits.append(started - max(before))
        finally:
            server.terminate()
            server.wait()
    print(f"| kills | cells | finished twice | never finished | left RUNNING | cells a kill "
          f"left held | their waits (s) | grace (s) | final rerun exit | load average |\n"
          f"|---|---|---|---|---|---|---|---|---|---|\n| {moments} | 24 "
          f"| {sum(1 for c in finished.values() if c > 1)} | {24 - len(finished)} "
          f"| {len(running)} | {len(waits)} | {', '.join(f'{w:.0f}' for w in sorted(waits))} "
          f"| {grace} | {final.returncode} | {load()} |")


def outage(seconds: int) -> None:
    import socket

    from mlflow import MlflowClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    epochs = 40
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, uri = start_server(folder, port)
        cmd = sweep(folder, uri, "--strategies", "global_weight", "--compressions", "4",
                    "--seeds", "0", "--epochs", str(epochs), "--synthetic-samples", "4096",
                    "--checkpoint-every", "0")
        log = folder / "sweep.log"
        proc = subprocess.Popen(cmd, cwd=folder, env=env(), stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        client = MlflowClient(uri)
        try:
            while not [r for r in client.search_runs(
                    [e.experiment_id for e in client.search_experiments()],
                    "tags.`mlbench.stage` = 'prune' and attributes.status = 'RUNNING'")
                    if int(r.data.tags.get("mlbench.checkpoint_epoch", 0)) >= 4]:
                assert proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.5)
            server.terminate()
            server.wait()
            away = time.time()
            time.sleep(seconds)
            came = time.time()
            server, _ = start_server(folder, port)
            back = time.perf_counter()
            code = proc.wait(timeout=3600)
            after = time.perf_counter() - back
            ids = [e.experiment_id for e in client.search_experiments()]
            (run,) = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")
            history = sorted(client.get_metric_history(run.info.run_id, "val_acc1"),
                             key=lambda m: m.step)
            steps = [m.step for m in history]
            text = log.read_text()
        finally:
            proc.kill()
            server.terminate()
            server.wait()
    print("| outage (s) | prune run | val_acc1 epochs on the server | final metrics | "
          "'is failing' lines | 'is back' lines | traceback | sweep ended after the server "
          "came back (s) | exit | load average |\n|---|---|---|---|---|---|---|---|---|---|\n"
          f"| {seconds} | {run.info.status} | {len(steps)} of {epochs} "
          f"({steps == list(range(1, epochs + 1))}) | "
          f"{'acc1' in run.data.metrics and 'compression' in run.data.metrics} | "
          f"{text.count('is failing')} | {text.count('is back after')} | "
          f"{'Traceback' in text} | {after:.1f} | {code} | {load()} |")
    spans = _epoch_spans(history, away, came)
    print("\n| epochs | when | median epoch (s) | longest epoch (s) |\n|---|---|---|---|")
    for when in ("before", "during", "after"):
        times = spans[when]
        if times:
            print(f"| {len(times)} | {when} the outage | {statistics.median(times):.2f} "
                  f"| {max(times):.2f} |")
    print("\nWhat the user saw of it:\n")
    for line in text.splitlines():
        if "is failing" in line or "is back after" in line:
            print(f"    {line}")


def _epoch_spans(history: list, away: float, came: float) -> dict[str, list[float]]:
    """Each epoch's seconds (the gap between its metric timestamp and the previous
    epoch's), by whether it ended before, during or after the outage."""
    spans: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    for prev, cur in zip(history, history[1:], strict=False):
        end = cur.timestamp / 1000
        when = "before" if end < away else "during" if end <= came else "after"
        spans[when].append(end - prev.timestamp / 1000)
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("workers", "kill", "outage"))
    parser.add_argument("--outage", type=int, default=180, help="seconds the server is away")
    parser.add_argument("--moments", type=int, default=10)
    parser.add_argument("--grace", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.what == "workers":
        workers()
    elif args.what == "outage":
        outage(args.outage)
    else:
        kill(args.moments, args.grace, args.seed)


if __name__ == "__main__":
    main()
