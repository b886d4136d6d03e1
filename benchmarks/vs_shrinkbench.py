"""One whole prune run: mlbench against ShrinkBench, side by side (target: at most 0.8x).

The comparison of issue 21: the same synthetic CIFAR-10 files in torchvision's on-disk
format (``make_cifar_files.py``: 2,000 train / 500 test images), resnet20, global
magnitude pruning at compression 4, one fine-tuning epoch of SGD (Nesterov momentum 0.9,
lr 1e-3, batch 128, constant rate, no weight decay), each side starting from a 1-epoch
base model of its own that already exists, ``OMP_NUM_THREADS`` threads (2). Whole
processes, timed from outside, A and B alternating (A B, B A, ...) for ``--pairs``
pairs, wall and CPU seconds (user + system, the process and its children), the 1-minute
load average beside each pair.

- mlbench: ``python -m mlbench prune --dataset cifar10 --model resnet20 --strategy
  global_weight --compression 4 --epochs 1 ...`` against a fresh sqlite store in which
  one untimed run of the same command trained and registered the base model (the timed
  runs find it); all of a run's tracking, its measured speed and its logged model
  included.
- ShrinkBench (unmodified; its checkout is given by ``--shrinkbench``, commit b244974):
  a three-line driver builds its ``resnet20``, loads the weights of its own 1-epoch base
  (an untimed ``TrainingExperiment``, its ``checkpoint-0.pt``) and runs
  ``PruningExperiment('CIFAR10', model, 'GlobalMagWeight', 4, ...)``: prune, metrics
  (size, FLOPs, validation pass), one epoch of training + validation, its CSV logs and
  checkpoint. Its DataLoader gets ``--sb-workers`` workers (default 0: on 2 cores, 8
  worker processes, its default, cost more than they bring for 2,000 images).

torchvision checks CIFAR files against the official MD5 sums: both processes run with
the ``sitecustomize.py`` of ``make_cifar_files.py`` on PYTHONPATH, which points the sums at
the synthetic files when torchvision's cifar module loads (the same for both sides).

Without ``--shrinkbench`` the benchmark says so in one line and exits 0 (skipped).
``--json PATH`` writes the figures for ``run.py``. Exit status 1 when the target is missed.

Run:
    python benchmarks/vs_shrinkbench.py --shrinkbench /path/to/shrinkbench [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import make_cifar_files  # noqa: E402

TARGET = 0.8  # mlbench's wall time at most this times ShrinkBench's
SB_COMMIT = "b244974"
SKIP = ("vs_shrinkbench: skipped: no ShrinkBench checkout given (--shrinkbench PATH: a "
        f"checkout of github.com/JJGO/shrinkbench, commit {SB_COMMIT})")

SB_BASE = """\
from shrinkbench.experiment import TrainingExperiment
exp = TrainingExperiment('CIFAR10', 'resnet20', seed=0, pretrained=False,
                         dl_kwargs={{'batch_size': 128, 'num_workers': {workers}}},
                         train_kwargs={{'epochs': 1}})
exp.run()
"""
SB_PRUNE = """\
import sys, torch
from shrinkbench.experiment import PruningExperiment
from shrinkbench.models import resnet20
model = resnet20(pretrained=False)
model.load_state_dict(torch.load(sys.argv[1], weights_only=True)['model_state_dict'])
exp = PruningExperiment('CIFAR10', model, 'GlobalMagWeight', 4, seed=0, pretrained=False,
                        dl_kwargs={{'batch_size': 128, 'num_workers': {workers}}},
                        train_kwargs={{'epochs': 1, 'optim': 'SGD', 'lr': 1e-3}})
exp.run()
"""


def mlbench_argv(data: Path, uri: str) -> list[str]:
    """The mlbench side: one prune run with the comparison's recipe."""
    return [sys.executable, "-m", "mlbench", "prune", "--dataset", "cifar10",
            "--data-dir", str(data), "--model", "resnet20", "--strategy", "global_weight",
            "--compression", "4", "--epochs", "1", "--batch-size", "128", "--optimizer", "sgd",
            "--lr", "0.001", "--momentum", "0.9", "--nesterov", "true", "--weight-decay", "0",
            "--schedule", "constant", "--base-epochs", "1", "--base-batch-size", "128",
            "--seed", "0", "--tracking-uri", uri, "--experiment", "vs-shrinkbench"]


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children included) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {proc.returncode}:\n"
                           + "\n".join((proc.stderr or proc.stdout).splitlines()[-15:]))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fresh_prune(uri: str) -> None:
    """Delete the store's prune runs (untimed): a `prune` of a configuration that already
    FINISHED prints that run instead of redoing it, and every timed run must prune."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(ids, "tags.`mlbench.stage` = 'prune'"):
        client.delete_run(run.info.run_id)


def pruned_once(uri: str) -> None:
    """The timed `prune` made exactly one new FINISHED prune run (it did the work)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")
    if [r.info.status for r in runs] != ["FINISHED"]:
        raise RuntimeError(f"the timed mlbench prune made {len(runs)} prune runs, not one")


def package_root(checkout: Path, work: Path) -> Path:
    """A folder from which ``import shrinkbench`` finds the checkout (linked if its folder
    is not called ``shrinkbench``)."""
    if checkout.name == "shrinkbench":
        return checkout.parent
    link = work / "sbpkg"
    link.mkdir(exist_ok=True)
    (link / "shrinkbench").symlink_to(checkout)
    return link


def compare(checkout: Path, pairs: int, threads: int, workers: int, work: Path) -> dict:
    """Prepare both base models, then time ``pairs`` alternating pairs; return the figures."""
    data = work / "data"
    folder = make_cifar_files.write(data / "CIFAR10")
    site = make_cifar_files.write_site(work / "site")
    env = {k: v for k, v in os.environ.items()
           # bytecode cached as a normal install does (PYTHONDONTWRITEBYTECODE
           # would recompile both sides' own modules in every timed process)
           if not k.startswith("MLFLOW_") and k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "MLBENCH_CIFAR_CHECKSUMS": str(folder / make_cifar_files.CHECKSUMS),
            "DATAPATH": str(data), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(site), str(package_root(checkout, work)),
                                           str(REPO), env.get("PYTHONPATH", "")])}
    sb_dir, mb_dir = work / "shrinkbench-runs", work / "mlbench-runs"
    sb_dir.mkdir()
    mb_dir.mkdir()
    (sb_dir / "base.py").write_text(SB_BASE.format(workers=workers))
    (sb_dir / "prune.py").write_text(SB_PRUNE.format(workers=workers))
    uri = f"sqlite:///{mb_dir / 'mlflow.db'}"
    mlbench = mlbench_argv(data / "CIFAR10", uri)
    # Untimed: each side's 1-epoch base model, and one run each to warm the file caches.
    timed([sys.executable, "base.py"], env, sb_dir)
    (checkpoint,) = sb_dir.glob("results/*/checkpoints/checkpoint-0.pt")
    shrinkbench = [sys.executable, "prune.py", str(checkpoint)]
    timed(mlbench, env, mb_dir)  # trains and registers mlbench's base, then prunes
    timed(shrinkbench, env, sb_dir)
    rows = []
    for i in range(pairs):
        load = os.getloadavg()[0]
        order = ("mlbench", "shrinkbench") if i % 2 == 0 else ("shrinkbench", "mlbench")
        got = {}
        for side in order:
            if side == "mlbench":
                fresh_prune(uri)
                got[side] = timed(mlbench, env, mb_dir)
                pruned_once(uri)
            else:
                got[side] = timed(shrinkbench, env, sb_dir)
        rows.append({"pair": i + 1, "first": order[0], "mlbench_wall": got["mlbench"][0],
                     "mlbench_cpu": got["mlbench"][1], "shrinkbench_wall": got["shrinkbench"][0],
                     "shrinkbench_cpu": got["shrinkbench"][1], "load_before": load,
                     "load_after": os.getloadavg()[0]})
        r = rows[-1]
        print(f"pair {i + 1}: mlbench {r['mlbench_wall']:.2f} s / {r['mlbench_cpu']:.2f} CPU-s, "
              f"ShrinkBench {r['shrinkbench_wall']:.2f} s / {r['shrinkbench_cpu']:.2f} CPU-s, "
              f"load {r['load_before']:.2f}", file=sys.stderr, flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in
           ("mlbench_wall", "mlbench_cpu", "shrinkbench_wall", "shrinkbench_cpu")}
    ratios = [r["mlbench_wall"] / r["shrinkbench_wall"] for r in rows]
    return {"pairs": rows, "median": med, "ratio_wall": statistics.median(ratios),
            "ratio_cpu": med["mlbench_cpu"] / med["shrinkbench_cpu"],
            "ratio_range": (min(ratios), max(ratios)), "threads": threads, "workers": workers}


def figures(result: dict) -> list[dict]:
    """The figures for ``run.py``'s report slot (ratio = ShrinkBench's time / mlbench's)."""
    med = result["median"]
    target = f"mlbench <= {TARGET}x ShrinkBench's time (ratio >= {1 / TARGET:.2f})"
    return [{"name": "prune run, wall (resnet20, synthetic CIFAR-10)", "unit": "s",
             "mlbench": med["mlbench_wall"], "baseline": med["shrinkbench_wall"],
             "baseline_name": f"ShrinkBench {SB_COMMIT}", "target": target,
             "ratio": 1 / result["ratio_wall"]},
            {"name": "prune run, CPU (user + system)", "unit": "s",
             "mlbench": med["mlbench_cpu"], "baseline": med["shrinkbench_cpu"],
             "baseline_name": f"ShrinkBench {SB_COMMIT}"}]


def report(result: dict) -> str:
    """Markdown: the pairs, the medians, the ratio, the load."""
    lines = ["| pair | first | mlbench wall | mlbench CPU | ShrinkBench wall | ShrinkBench CPU "
             "| ratio (wall) | load before / after |", "|" + "---|" * 8]
    for r in result["pairs"]:
        lines.append(f"| {r['pair']} | {r['first']} | {r['mlbench_wall']:.2f} s | "
                     f"{r['mlbench_cpu']:.2f} s | {r['shrinkbench_wall']:.2f} s | "
                     f"{r['shrinkbench_cpu']:.2f} s | "
                     f"{r['mlbench_wall'] / r['shrinkbench_wall']:.2f} | "
                     f"{r['load_before']:.2f} / {r['load_after']:.2f} |")
    med, (low, high) = result["median"], result["ratio_range"]
    lines += ["", f"mlbench takes {result['ratio_wall']:.2f}x ShrinkBench's wall time (median "
              f"of pairs, {low:.2f}-{high:.2f}) and {result['ratio_cpu']:.2f}x its CPU time "
              f"(medians {med['mlbench_wall']:.2f} s / {med['mlbench_cpu']:.2f} CPU-s against "
              f"{med['shrinkbench_wall']:.2f} s / {med['shrinkbench_cpu']:.2f} CPU-s); "
              f"target: at most {TARGET}x. {result['threads']} threads, ShrinkBench's "
              f"DataLoader {result['workers']} workers."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison (or skip without a checkout); exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shrinkbench", type=Path, default=None, metavar="PATH",
                        help="a checkout of ShrinkBench (without it: skipped)")
    parser.add_argument("--pairs", type=int, default=5, help="alternating pairs (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS (default 2)")
    parser.add_argument("--sb-workers", type=int, default=0,
                        help="ShrinkBench's DataLoader workers (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder")
    args = parser.parse_args(argv)
    if args.shrinkbench is None:
        print(SKIP)
        if args.json:
            args.json.write_text(json.dumps({"skipped": SKIP, "figures": []}))
        return 0
    checkout = args.shrinkbench.expanduser().resolve()
    if not (checkout / "experiment" / "prune.py").is_file():
        print(f"vs_shrinkbench: --shrinkbench {args.shrinkbench}: not a ShrinkBench checkout "
              "(no experiment/prune.py there)", file=sys.stderr)
        return 2
    if args.pairs < 1 or args.threads < 1 or args.sb_workers < 0:
        print("vs_shrinkbench: --pairs and --threads must be >= 1, --sb-workers >= 0",
              file=sys.stderr)
        return 2
    work = Path(args.keep or tempfile.mkdtemp(prefix="mlbench-vs-shrinkbench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = compare(checkout, args.pairs, args.threads, args.sb_workers, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    text = report(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"figures": figures(result), "markdown": text,
                                         "result": result}, indent=1))
    return 0 if result["ratio_wall"] <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
