"""The sweep queue's cost and scale: hand-out + report per cell, and many workers at once.

    python benchmarks/queue_scale.py cost                # per cell: queue vs MLflow writes
    python benchmarks/queue_scale.py scale --postgres    # 1/4/16 workers, 1,000 cells
    python benchmarks/queue_scale.py grow                # per-cell steps at 10/100/1,000 cells

``cost``: coordination per cell (take a waiting trial, record its run id, complete it,
with the progress read a worker does before each take) on a journal file, sqlite and
PostgreSQL, against the MLflow writes every cell makes anyway (create the run, log params,
log a metrics batch, end the run), on a local sqlite store and a local ``mlflow server``.

``scale``: 1,000 cells that do no training (``do`` completes at once: a cell kind for this
benchmark only) taken by 1, 4 and 16 forked worker processes from one PostgreSQL storage:
hand-out rate (cells/s), duplicates (cells done twice: must be 0) and lost cells (0).
Prints markdown rows with the load average beside each figure.

``grow``: what a sweep pays per cell besides the cell's own training, at 10, 100 and
1,000 cells on one worker, to show which step grows with the store (issue 21): the
queue's hand-out (progress + take + complete) on a journal file and on sqlite, MLflow's
writes of one prune run, the finished-run look-up by config hash
(``Tracker.find_finished``) and the base look-up in the Model Registry
(``Registry.find``), each timed over the last 10 cells of a store holding that many.
Flat per-cell costs are the target; a row that grows tenfold with the cells is a step
that reads the whole store.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.tracking_overhead import start_server  # noqa: E402,F401 - one server recipe
from mlbench.tuning import WorkQueue, open_storage, parse_storage  # noqa: E402
from mlbench.tuning._queue import DONE_STATE, KEY  # noqa: E402


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def queue_cost(url: str, cells: int) -> float:
    """Seconds per cell of progress + take + set run id + complete, one worker."""
    storage = open_storage(parse_storage(url), heartbeat_s=15, grace_s=60)
    queue = WorkQueue.open(storage, f"cost-{time.time_ns()}", [f"cell:{i}" for i in range(cells)])
    start = time.perf_counter()
    for _ in range(cells):
        queue.progress()
        job = queue.take()
        with job:
            job.complete("0" * 32)
    return (time.perf_counter() - start) / cells


def mlflow_cost(uri: str, cells: int) -> float:
    """Seconds per cell of the writes every prune run makes: create, params, metrics, end."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(uri)
    exp = client.create_experiment(f"cost-{time.time_ns()}")
    params = [Param(f"p{i}", str(i)) for i in range(30)]  # a prune run logs ~30 params
    start = time.perf_counter()
    for _ in range(cells):
        run = client.create_run(exp, tags={"mlbench.stage": "prune"})
        client.log_batch(run.info.run_id, params=params)
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id,
                         metrics=[Metric(f"m{i}", 0.5, now, 0) for i in range(20)])
        client.set_terminated(run.info.run_id)
    return (time.perf_counter() - start) / cells


def cost(postgres: str | None, cells: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = []
        for name, url in (("journal file", f"journal:{folder / 'q.journal'}"),
                          ("sqlite", f"sqlite:///{folder / 'q.db'}"),
                          *((("PostgreSQL", postgres),) if postgres else ())):
            rows.append((f"queue, {name}", queue_cost(url, cells), load()))
        rows.append(("MLflow writes, local sqlite store",
                     mlflow_cost(f"sqlite:///{folder / 'mlflow.db'}", cells), load()))
        server, uri = start_server(folder)
        try:
            rows.append(("MLflow writes, local mlflow server", mlflow_cost(uri, cells), load()))
        finally:
            server.terminate()
            server.wait()
    print(f"| per cell ({cells} cells) | ms | load average (1, 5, 15 min) |\n|---|---|---|")
    for name, seconds, avg in rows:
        print(f"| {name} | {seconds * 1000:.1f} | {avg} |")


def _queue_tail(url: str, cells: int, tail: int = 10) -> float:
    """Seconds per cell of progress + take + complete over the last ``tail`` of ``cells``."""
    storage = open_storage(parse_storage(url), heartbeat_s=15, grace_s=60)
    queue = WorkQueue.open(storage, f"grow-{time.time_ns()}",
                           [f"cell:{i}" for i in range(cells)])
    for _ in range(cells - tail):  # fill: the queue as a sweep leaves it, cells done
        with queue.take() as job:
            job.complete("0" * 32)
    start = time.perf_counter()
    for _ in range(tail):
        queue.progress()
        with queue.take() as job:
            job.complete("0" * 32)
    return (time.perf_counter() - start) / tail


def _mlflow_tail(uri: str, cells: int, tail: int = 10) -> dict[str, float]:
    """Seconds per cell of a prune run's writes, the finished-run look-up and the base
    look-up, over the last ``tail`` of ``cells`` runs in one store."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from mlbench.config import TrackingConfig
    from mlbench.tracking import Tracker

    client = MlflowClient(uri)
    exp = client.create_experiment(f"grow-{time.time_ns()}")
    tracker = Tracker(TrackingConfig(tracking_uri=uri))
    name = f"mlbench-grow-{time.time_ns()}"
    client.create_registered_model(name)
    params = [Param(f"p{i}", str(i)) for i in range(30)]
    out = {"writes": 0.0, "find_finished": 0.0, "base": 0.0}
    for i in range(cells):
        timing = i >= cells - tail
        t0 = time.perf_counter()
        run = client.create_run(exp, tags={"mlbench.stage": "prune",
                                           "mlbench.config_hash": f"{i:016x}"})
        client.log_batch(run.info.run_id, params=params)
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(f"m{k}", 0.5, now, 0)
                                                   for k in range(20)])
        client.set_terminated(run.info.run_id)
        t1 = time.perf_counter()
        tracker.find_finished("prune", f"{i + 1:016x}")  # the next cell's: not there yet
        t2 = time.perf_counter()
        if i % 50 == 0 or timing:  # one base model per seed: a version per 50 cells
            client.create_model_version(name, f"runs:/{run.info.run_id}/m", run.info.run_id,
                                        tags={"mlbench.base_hash": f"{i:016x}"})
        t3 = time.perf_counter()
        tracker.registry._found.clear()  # a new worker process remembers nothing
        tracker.registry.find(name, f"{i:016x}")
        t4 = time.perf_counter()
        if timing:
            out["writes"] += (t1 - t0) / tail
            out["find_finished"] += (t2 - t1) / tail
            out["base"] += (t4 - t3) / tail
    return out


GROW_LABELS = {"writes": "MLflow writes of a prune run (sqlite store)",
               "find_finished": "finished-run look-up by config hash",
               "base": "base model look-up in the Model Registry"}


def grow(sizes: list[int]) -> None:
    """Per-cell cost of each step at each store size, as one markdown table."""
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in sizes:
            rows.setdefault("queue hand-out, journal file", []).append(
                _queue_tail(f"journal:{folder / f'q{n}.journal'}", n))
            rows.setdefault("queue hand-out, sqlite", []).append(
                _queue_tail(f"sqlite:///{folder / f'q{n}.db'}", n))
            for step, seconds in _mlflow_tail(f"sqlite:///{folder / f'm{n}.db'}", n).items():
                rows.setdefault(GROW_LABELS[step], []).append(seconds)
            print(f"{n} cells done, load {load()}", file=sys.stderr, flush=True)
    print("| step, per cell | " + " | ".join(f"{n:,} cells" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for label, values in rows.items():
        print(f"| {label} | " + " | ".join(f"{v * 1000:.1f} ms" for v in values) + " |")
    print(f"\nload average at end: {load()}")


def _drain(url: str, study: str, out: str) -> None:
    storage = open_storage(parse_storage(url), heartbeat_s=15, grace_s=60)
    queue = WorkQueue.open(storage, study, [])
    done = []
    while True:
        job = queue.take()
        if job is None:
            break
        with job:
            job.complete("0" * 32)
        done.append(job.key)
    Path(out).write_text("\n".join(done))


def scale(url: str, cells: int, counts: list[int]) -> None:
    print("| workers | cells | seconds | cells/s | done twice | lost | load average |\n"
          "|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            study = f"scale-{n}-{time.time_ns()}"
            storage = open_storage(parse_storage(url), heartbeat_s=15, grace_s=60)
            queue = WorkQueue.open(storage, study, [f"cell:{i}" for i in range(cells)])
            outs = [str(Path(tmp) / f"{study}-{i}.txt") for i in range(n)]
            ctx = multiprocessing.get_context("fork")
            procs = [ctx.Process(target=_drain, args=(url, study, out)) for out in outs]
            start = time.perf_counter()
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            seconds = time.perf_counter() - start
            taken = Counter(k for out in outs for k in Path(out).read_text().split())
            complete = Counter(t.user_attrs[KEY] for t in queue.study.get_trials()
                               if t.state == DONE_STATE)
            twice = sum(1 for c in complete.values() if c > 1) + \
                sum(1 for c in taken.values() if c > 1)
            lost = cells - len(complete)
            print(f"| {n} | {cells} | {seconds:.1f} | {cells / seconds:.1f} | {twice} | {lost} "
                  f"| {load()} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cost", "scale", "grow"))
    parser.add_argument("--postgres", action="store_true",
                        help="start a private PostgreSQL cluster (tests/_postgres.py)")
    parser.add_argument("--cells", type=int, default=None)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--sizes", default=None, help="grow: cells per store (10,100,1000)")
    args = parser.parse_args()
    cluster = url = None
    if args.postgres:
        import socket

        from tests._postgres import PostgresCluster

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cluster = PostgresCluster.start(port)
        url = cluster.create_database("bench")
    try:
        print(f"cores: {os.cpu_count()}, load average at start: {load()}")
        if args.what == "cost":
            cost(url, args.cells or 100)
        elif args.what == "grow":
            grow([int(n) for n in (args.sizes or "10,100,1000").split(",")])
        else:
            assert url, "scale needs --postgres"
            scale(url, args.cells or 1000, [int(n) for n in args.workers.split(",")])
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
