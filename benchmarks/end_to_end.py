"""End to end: the default main job and the default sweep, against their bare compute.

mlbench: the CLI as a user runs it, in a fresh temp folder with a fresh sqlite store
(the default ``./mlflow.db``; ``MLFLOW_TRACKING_URI`` unset), timed from process start
to exit:

  main   ``python -m mlbench prune`` with every default (digits, lenet, global_weight,
         compression 8): trains and registers the base model, prunes, fine-tunes, evaluates.
  sweep  ``python -m mlbench sweep --project projects/digits-lenet.yaml`` (the MLproject's
         sweep entry point with its defaults): 5 strategies x 5 compressions x 3 seeds.

Baseline: the training those jobs do, alone, in this process: the same data (loaded by
mlbench, normalized, in memory, no augmentation), a fresh LeNet per training, bare SGD
loops over the same number of epochs and batches (base models' epochs plus every cell's
fine-tuning epochs). The ratio is the share of the job's wall time that is training:
what is left is interpreter start-up, imports, evaluation, MLflow and the registry.

Quick mode: 1 fine-tuning epoch, 2 base epochs, and a 2 x 2 x 1 grid.

Run:
    python benchmarks/end_to_end.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from _common import Figure, Section, load1
from finetune_throughput import bare_loop

from mlbench.config import OptimConfig, RunConfig
from mlbench.data import load_dataset
from mlbench.models import create_model
from mlbench.presets import EXTRA_KEYS, GRID_KEYS, load_preset
from mlbench.sweep import Grid

TITLE = "End to end"
REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "projects" / "digits-lenet.yaml"
QUICK = {"epochs": 1, "base_epochs": 2}
QUICK_GRID = {"strategies": "global_weight,layer_grad", "compressions": "2,8", "seeds": "0"}


def options(values: dict[str, object]) -> list[str]:
    """``{"base_epochs": 2}`` -> ``["--base-epochs", "2"]``."""
    return [arg for k, v in values.items() for arg in (f"--{k.replace('_', '-')}", str(v))]


def cli_seconds(argv: list[str]) -> float:
    """Wall seconds of ``python -m mlbench <argv>`` in a fresh folder with a fresh store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with tempfile.TemporaryDirectory(prefix="mlbench-e2e-") as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mlbench", *argv], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"mlbench {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def bare_training(cfg: RunConfig, recipes: list[OptimConfig]) -> float:
    """Seconds of bare SGD loops: one fresh model per recipe, its epochs over the data."""
    splits = load_dataset(cfg.data, torch.device("cpu"))
    train = splits.train
    start = time.perf_counter()
    for recipe in recipes:
        drop_last = len(train) > recipe.batch_size  # as engine.fit batches it
        batches = list(train.batches(recipe.batch_size, drop_last=drop_last))
        model = create_model(cfg.model, splits.info.input_shape, splits.info.num_classes)
        sgd = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                              weight_decay=recipe.weight_decay)
        for _ in range(recipe.epochs):
            bare_loop(model, sgd, batches)
    return time.perf_counter() - start


def main_job(quick: bool) -> Figure:
    """The default prune job against its base training plus fine-tuning, bare."""
    overrides = QUICK if quick else {}
    cfg = RunConfig.from_flat(dict(overrides))
    seconds = cli_seconds(["prune", *options(overrides)])
    bare = bare_training(cfg, [cfg.base, cfg.finetune])
    return Figure(f"`mlbench prune` (defaults: digits, lenet{', quick' if quick else ''})",
                  seconds, bare, "its training steps as a bare loop")


def sweep_job(quick: bool) -> Figure:
    """The default sweep (or the quick grid) against all its training, bare."""
    preset = load_preset(PRESET)
    defaults = Grid()  # what the CLI falls back to where the preset names no grid
    grid = {k: ",".join(f"{v:g}" if isinstance(v, float) else str(v)
                        for v in preset.get(k) or getattr(defaults, k)) for k in GRID_KEYS}
    given: dict[str, object] = {}  # full mode: the preset alone, as the MLproject runs it
    if quick:
        grid, given = QUICK_GRID, {**QUICK_GRID, **QUICK}
    flat = {k: v for k, v in preset.items() if k not in EXTRA_KEYS}
    cfg = RunConfig.from_flat({**flat, **(QUICK if quick else {})})
    seconds = cli_seconds(["sweep", "--project", str(PRESET), *options(given)])
    n = {k: len(v.split(",")) for k, v in grid.items()}
    cells = n["strategies"] * n["compressions"] * n["seeds"]
    bare = bare_training(cfg, [cfg.base] * n["seeds"] + [cfg.finetune] * cells)
    size = f"{n['strategies']} x {n['compressions']} x {n['seeds']} = {cells} cells"
    return Figure(f"`mlbench sweep` (digits-lenet preset, {size})", seconds, bare,
                  "its training steps as a bare loop")


def section(quick: bool) -> Section:
    """The suite's section: both jobs."""
    before = load1()
    figures = [main_job(quick), sweep_job(quick)]
    notes = [
        "Wall time of the CLI process (start-up, imports, data, training, evaluation, "
        "MLflow logging and the Model Registry) against the bare training loops alone: the "
        "ratio is the share of the job's wall time spent training.",
        "On the default 8x8 digits with LeNet an epoch takes milliseconds, so fixed costs "
        "dominate; on CIFAR or ImageNet the same fixed costs are a small share.",
    ]
    return Section(TITLE, figures, notes, (before, load1()))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures of ``section``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, a 2 x 2 x 1 grid")
    args = parser.parse_args(argv)
    for f in section(args.quick).figures:
        print(f"{f.name}: {f.mlbench:.1f} s; {f.baseline_name}: {f.baseline:.1f} s; "
              f"ratio {f.ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
