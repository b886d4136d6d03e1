"""The fault table: every fault of issues 18 and 20, tried for real, counted in one table.

    python benchmarks/fault_table.py            # every row, 3 tries of each kill -9
    python benchmarks/fault_table.py --quick    # one try each, fewer epochs
    python benchmarks/run.py --only faults      # as a section of RESULTS.md

Rows: kill -9 at a random moment of `prune`, `train`, an iterative `prune`, `sweep` and
`tune`, then the same command again; a real `mlflow server` stopped for a while
mid-training; kill -9 of `train` while that server is stopped (epochs queued on local
disk), then the server back and the rerun; a server whose API turns to HTTP 500 mid-run
(a forwarding proxy in front of a real server), then `resend` and the rerun; a corrupt
checkpoint; corrupt base weights; several processes opening one fresh sqlite store; and
every kind of bad preset (unknown key, wrong type, not YAML, ``!!python/object``).

Each try counts as: **survived** (every unit of work FINISHED once, or bad input
refused in one line with exit 2), **lost** (a unit never finished, or an epoch's
metrics missing from the store), **duplicated** (a unit FINISHED twice, or an epoch's
metrics stored twice), **left RUNNING** (a run still RUNNING after the last command)
and **traceback** (a Python traceback in any output). Every row must read 0 lost, 0
duplicated, 0 left RUNNING, 0 tracebacks.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from _common import Section, load1  # noqa: E402

from benchmarks.tracking_overhead import start_server  # noqa: E402
from tests._failing_proxy import FailingProxy  # noqa: E402

TITLE = "Fault table"
TINY = ["--dataset", "synthetic", "--synthetic-shape", "1x8x8", "--synthetic-classes", "4",
        "--synthetic-samples", "192", "--model", "lenet", "--batch-size", "32",
        "--device", "cpu"]
PRUNE = [*TINY, "--base-batch-size", "32", "--compression", "4", "--checkpoint-every", "0"]


@dataclass
class Row:
    """One fault's counts over its tries."""

    fault: str
    tries: int = 0
    survived: int = 0
    lost: int = 0
    duplicated: int = 0
    running: int = 0
    tracebacks: int = 0
    note: str = ""

    def add(self, *, lost: int = 0, duplicated: int = 0, running: int = 0,
            traceback: bool = False) -> None:
        """Count one try."""
        self.tries += 1
        self.lost += lost
        self.duplicated += duplicated
        self.running += running
        self.tracebacks += int(traceback)
        self.survived += int(not (lost or duplicated or running or traceback))


def _env(uri: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_TRACKING_URI": uri, "MLBENCH_OUTBOX": str(folder / "outbox"),
            "PYTHONPATH": str(REPO)}


def _mlbench(*argv: str) -> list[str]:
    return [sys.executable, "-m", "mlbench", *argv]


def _run(argv: list[str], folder: Path, uri: str, timeout: float = 1200
         ) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=folder, env=_env(uri, folder), capture_output=True,
                          text=True, timeout=timeout)


def _runs(uri: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _count(uri: str, stage: str, key: str = "mlbench.config_hash") -> tuple[Counter, int]:
    """FINISHED runs of ``stage`` per ``key`` tag, and how many runs are RUNNING."""
    runs = _runs(uri)
    finished = Counter(r.data.tags.get(key) for r in runs
                       if r.data.tags.get("mlbench.stage") == stage
                       and r.info.status == "FINISHED")
    return finished, sum(r.info.status == "RUNNING" for r in runs)


def _kill_at_random(argv: list[str], folder: Path, uri: str, rng: random.Random,
                    within_s: float) -> float:
    """Start ``argv``, kill -9 its process group at a random moment; 0 if it was killed,
    else how long it took (it ended before the moment drawn)."""
    proc = subprocess.Popen(argv, cwd=folder, env=_env(uri, folder), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    start = time.monotonic()
    try:
        proc.wait(timeout=rng.uniform(2.0, within_s))
        return time.monotonic() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        return 0.0


def kill_row(name: str, argv: list[str], stage: str, units: int, tries: int, within_s: float,
             seed: int, key: str = "mlbench.config_hash") -> Row:
    """kill -9 ``argv`` at a random moment, rerun it; ``units`` runs of ``stage`` must
    each end FINISHED exactly once. A command that ends before its kill is no try of the
    fault (run again, a plain ``prune`` makes a second run by design): another moment is
    drawn, within the time that command took, up to 3 x ``tries`` starts."""
    row, rng, ended = Row(name), random.Random(seed), 0
    for _ in range(3 * tries):
        if row.tries == tries:
            break
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            uri = f"sqlite:///{folder / 'mlflow.db'}"
            took = _kill_at_random(argv, folder, uri, rng, within_s)
            if took:
                ended += 1
                within_s = max(2.5, min(within_s, 0.9 * took))
                continue
            rerun = _run(argv, folder, uri)
            try:
                finished, running = _count(uri, stage, key)
            except Exception as exc:  # noqa: BLE001 - a broken store: counted, shown
                row.add(lost=units, traceback=True)
                row.note = f"store unreadable: {str(exc).splitlines()[0][:100]}"
                continue
            row.add(lost=max(0, units - len(finished)),
                    duplicated=sum(c - 1 for c in finished.values() if c > 1),
                    running=running, traceback="Traceback" in rerun.stderr)
    if ended:
        row.note = f"{ended} more started and ended before their kill (not counted)"
    return row


def outage_row(seconds: float) -> Row:
    """A real server stopped ``seconds`` mid-training, then started again."""
    row = Row(f"server stopped {seconds:.0f} s mid-training")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, uri = start_server(folder)
        port = int(uri.rsplit(":", 1)[1])
        argv = _mlbench("train", *TINY, "--epochs", "30", "--checkpoint-every", "0",
                        "--tracking-uri", uri)
        log = folder / "train.log"
        proc = subprocess.Popen(argv, cwd=folder, env=_env(uri, folder), stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _until(lambda: _checkpointed(uri), proc)
            server.terminate()
            server.wait()
            time.sleep(seconds)
            server, _ = start_server(folder, port)
            proc.wait(timeout=1800)
            finished, running = _count(uri, "train")
            row.add(lost=int(len(finished) != 1 or proc.returncode != 0), running=running,
                    traceback="Traceback" in log.read_text())
        finally:
            proc.kill()
            server.terminate()
            server.wait()
    return row


def outage_kill_row(tries: int, seed: int) -> Row:
    """kill -9 of `train` while a real server is stopped (epochs queued on local disk),
    then the server back and the rerun: every epoch of the killed run arrives once."""
    row, rng = Row("kill -9 `train` while the server is stopped, server back, rerun"), \
        random.Random(seed)
    for _ in range(tries):
        with tempfile.TemporaryDirectory() as tmp:
            _outage_kill_once(row, Path(tmp), rng)
    return row


def _queued(folder: Path) -> list:
    """The requests waiting in the outboxes under ``folder``."""
    from mlbench.tracking._outbox import read_ops

    return [op for box in (folder / "outbox").glob("*") for op in read_ops(box)]


def _outage_kill_once(row: Row, folder: Path, rng: random.Random) -> None:
    from mlflow import MlflowClient

    server, uri = start_server(folder)
    argv = _mlbench("train", *TINY, "--epochs", "150", "--checkpoint-every", "0",
                    "--tracking-uri", uri)
    proc = subprocess.Popen(argv, cwd=folder, env=_env(uri, folder), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _until(lambda: _checkpointed(uri), proc)
        server.terminate()
        server.wait()
        _until(lambda: any(op.metrics for op in _queued(folder)), proc)
        time.sleep(rng.uniform(0.0, 5.0))  # a random moment of the outage
        os.killpg(proc.pid, 9)
        proc.wait()
        steps = {m.step for op in _queued(folder) for m in op.metrics if m.key == "val_acc1"}
        server, _ = start_server(folder, int(uri.rsplit(":", 1)[1]))
        (killed,) = _runs(uri)
        rerun = _run(argv, folder, uri)
        finished, running = _count(uri, "train")
        curve = [m.step for m in MlflowClient(uri).get_metric_history(killed.info.run_id,
                                                                       "val_acc1")]
        missing = set(range(1, max(steps | set(curve)) + 1)) - set(curve)
        row.add(lost=int(len(finished) != 1) + len(missing),
                duplicated=len(curve) - len(set(curve)), running=running,
                traceback="Traceback" in rerun.stderr)
        row.note = f"{len(steps)} epochs queued on disk at the kill (last try)"
    finally:
        proc.kill()
        server.terminate()
        server.wait()


def _checkpointed(uri: str) -> bool:
    try:
        return any(r.data.tags.get("mlbench.checkpoint_epoch") for r in _runs(uri))
    except Exception:  # noqa: BLE001 - the server or store is not ready yet
        return False


def _until(predicate: Callable[[], bool], proc: subprocess.Popen, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the command ended before the fault could be made")
        time.sleep(0.3)


def failing_row() -> Row:
    """HTTP 500 mid-run: one line and exit 1, then `resend` and the rerun finish the run."""
    row = Row("server API answers HTTP 500 mid-run (give-up 5 s), resend, rerun")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, real = start_server(folder)
        proxy = FailingProxy(real)
        uri = proxy.url
        argv = _mlbench("train", *TINY, "--epochs", "30", "--checkpoint-every", "0",
                        "--tracking-uri", uri)
        try:
            proc = subprocess.Popen([*argv, "--give-up", "5"], cwd=folder,
                                    env=_env(uri, folder), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            _until(lambda: _checkpointed(real), proc)
            proxy.failing.set()
            _, err = proc.communicate(timeout=600)
            proxy.failing.clear()
            last = err.strip().splitlines()[-1] if err.strip() else ""
            clean = proc.returncode == 1 and "keeps failing" in last
            outboxes = list((folder / "outbox").glob("*"))
            sent = [_run(_mlbench("resend", str(o)), folder, uri) for o in outboxes]
            rerun = _run(argv, folder, uri)
            finished, running = _count(real, "train")
            row.add(lost=int(len(finished) != 1 or not clean or rerun.returncode != 0),
                    running=running, traceback=any("Traceback" in t for t in (
                        err, rerun.stderr, *(s.stderr for s in sent))))
            row.note = f"exit {proc.returncode}: `{last[:90]}...`"
        finally:
            proxy.close()
            server.terminate()
            server.wait()
    return row


def corrupt_row(what: str) -> Row:
    """A corrupt checkpoint (of a killed prune) or corrupt registered base weights."""
    row = Row(f"corrupt {what}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        from mlflow import MlflowClient

        if what == "checkpoint":
            # 3,072 samples, 60 epochs: a quiet machine must not finish between two polls
            argv = _mlbench("prune", *PRUNE, "--synthetic-samples", "3072", "--base-epochs",
                            "3", "--epochs", "60",
                            "--tracking-uri", uri)
            proc = subprocess.Popen(argv, cwd=folder, env=_env(uri, folder),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            _until(lambda: any(r.data.tags.get("mlbench.stage") == "prune"
                               and r.data.tags.get("mlbench.checkpoint_epoch")
                               for r in _runs(uri)), proc)
            os.killpg(proc.pid, 9)
            proc.wait()
            (run,) = [r for r in _runs(uri) if r.data.tags.get("mlbench.stage") == "prune"]
            files = [Path(run.info.artifact_uri.removeprefix("file://")) / "checkpoint"]
        else:
            argv = _mlbench("prune", *PRUNE, "--base-epochs", "2", "--epochs", "1",
                            "--tracking-uri", uri)
            _run(_mlbench("train", *TINY, "--epochs", "2", "--tracking-uri", uri), folder, uri)
            (run,) = MlflowClient(uri).search_runs(["0"])
            files = [Path(run.info.artifact_uri.removeprefix("file://")) / "base_model"]
        for file in (f for folder_ in files for f in folder_.rglob("*.safetensors")):
            file.write_bytes(b"\x00garbage" * 64)
        rerun = _run(argv, folder, uri)
        finished, running = _count(uri, "prune")
        refused = rerun.returncode == 2 and len(rerun.stderr.strip().splitlines()) == 1
        row.add(lost=int(len(finished) != 1 and not refused), running=running,
                traceback="Traceback" in rerun.stderr)
        tail = rerun.stderr.strip().splitlines()
        row.note = f"exit {rerun.returncode}: `{(tail[-1] if tail else '')[:100]}`"
    return row


def store_row(processes: int) -> Row:
    """Several processes open one fresh sqlite store at the same moment."""
    row = Row(f"{processes} processes open one fresh sqlite store together")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'fresh.db'}"
        code = ("from mlbench.config import TrackingConfig\nfrom mlbench.tracking import "
                f"Tracker\nTracker(TrackingConfig(tracking_uri={uri!r})).experiment_id()")
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=folder,
                                  env=_env(uri, folder), stderr=subprocess.PIPE, text=True)
                 for _ in range(processes)]
        for proc in procs:
            _, err = proc.communicate(timeout=600)
            row.add(lost=int(proc.returncode != 0), traceback="Traceback" in err)
    return row


PRESETS = {
    "unknown key": "dataset: synthetic\nepohcs: 3\n",
    "wrong type": "dataset: synthetic\nepochs: three\n",
    "not YAML": "dataset: [synthetic\n  epochs: 3: 4\n",
    "!!python/object": "dataset: !!python/object/apply:os.system ['echo pwned']\n",
}


def preset_row() -> Row:
    """Every kind of bad preset: exit 2, one line, nothing run."""
    row = Row(f"bad presets ({', '.join(PRESETS)})")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        for name, text in PRESETS.items():
            preset = folder / f"{name.replace(' ', '_').replace('/', '_')}.yaml"
            preset.write_text(text)
            for command in ("prune", "sweep", "tune"):
                done = _run(_mlbench(command, "--project", str(preset), "--tracking-uri", uri),
                            folder, uri, timeout=300)
                one_line = done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
                row.add(lost=int(not one_line), traceback="Traceback" in done.stderr)
    ran = not (folder / "mlflow.db").exists() or not _runs(uri)
    row.note = "no run was started" if ran else "a run was started"
    return row


def builders(quick: bool, seed: int = 0) -> dict[str, Callable[[], Row]]:
    """Every row of the table, by short name, not yet run (``quick``: one try each)."""
    tries = 1 if quick else 3
    base, fine = ("6", "4") if quick else ("12", "8")
    prune = _mlbench("prune", *PRUNE, "--base-epochs", base, "--epochs", fine)
    sweep = _mlbench("sweep", *PRUNE[:-4], "--base-epochs", base,
                     "--epochs", fine, "--strategies", "global_weight,random",
                     "--compressions", "4", "--seeds", "0", "--grace", "5",
                     "--checkpoint-every", "0")
    tune = _mlbench("tune", *PRUNE[:-4], "--base-epochs", base,
                    "--epochs", "2", "--strategies", "global_weight", "--trials", "2",
                    "--seeds", "0")
    return {
        "prune": lambda: kill_row("kill -9 `prune` at a random moment, rerun", prune, "prune",
                                  1, tries, 25, seed),
        "train": lambda: kill_row(
            "kill -9 `train` at a random moment, rerun",
            _mlbench("train", *TINY, "--epochs", base, "--checkpoint-every", "0"), "train", 1,
            tries, 20, seed + 1),
        "iterative": lambda: kill_row(
            "kill -9 iterative `prune` at a random moment, rerun",
            [*prune, "--prune-schedule", "iterative", "--prune-rounds", "2"], "prune", 1,
            tries, 30, seed + 2),
        "sweep": lambda: kill_row("kill -9 `sweep` (2 cells) at a random moment, rerun",
                                  sweep, "prune", 2, tries, 40, seed + 3),
        "tune": lambda: kill_row(
            "kill -9 `tune` (2 trials, 1 tuned run) at a random moment, rerun", tune, "prune",
            1, tries, 45, seed + 4),
        "outage": lambda: outage_row(10 if quick else 30),
        "outage-kill": lambda: outage_kill_row(tries, seed + 5),
        "failing": failing_row,
        "checkpoint": lambda: corrupt_row("checkpoint"),
        "weights": lambda: corrupt_row("base weights"),
        "store": lambda: store_row(4),
        "presets": preset_row,
    }


def rows(quick: bool, seed: int = 0, only: str = "") -> list[Row]:
    """Run the rows (those named in ``only``, comma-separated, if given), in order."""
    chosen = [k.strip() for k in only.split(",") if k.strip()]
    table = []
    for name, build in builders(quick, seed).items():
        if chosen and name not in chosen:
            continue
        try:
            row = build()
        except RuntimeError as exc:  # the fault could not be made: said, never a count
            row = Row(name, note=f"not made: {exc}")
        print(markdown([row]).splitlines()[-1], file=sys.stderr, flush=True)  # progress
        table.append(row)
    return table


def markdown(table: list[Row]) -> str:
    """The table as RESULTS.md shows it."""
    lines = ["| fault | tries | survived | lost | duplicated | left RUNNING | traceback | "
             "note |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.fault} | {r.tries} | {r.survived} | {r.lost} | {r.duplicated} | "
              f"{r.running} | {r.tracebacks} | {r.note} |" for r in table]
    return "\n".join(lines)


def section(quick: bool) -> Section:
    """The table as a section of benchmarks/run.py's RESULTS.md."""
    before = load1()
    table = rows(quick)
    notes = [markdown(table), f"`python benchmarks/fault_table.py{' --quick' if quick else ''}`"
             "; every row must read 0 lost, 0 duplicated, 0 left RUNNING, 0 tracebacks."]
    return Section(TITLE, [], notes, (before, load1()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="",
                        help=f"rows to run, comma-separated: {', '.join(builders(True))}")
    args = parser.parse_args()
    start = time.perf_counter()
    print(markdown(rows(args.quick, args.seed, args.only)))
    print(f"\n{time.perf_counter() - start:.0f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
