"""Fine-tuning throughput: mlbench end to end versus a bare PyTorch loop, in one process.

What is measured (same model, data, batch size and number of samples per timed block):

  (a) bare     A plain loop over batches already in memory: a Python list of normalized
               float (B, 3, 32, 32) batches, no augmentation. Per batch: zero_grad,
               forward, cross_entropy, backward, SGD step. Nothing else.
  (m) masks    (a) on the pruned model with ``MaskHold`` attached: the cost of holding
               masks alone (compare ShrinkBench's masked modules: 1.6% on this machine).
  (b) mlbench  ``mlbench.engine.fit`` for one epoch of the pruned model, as ``pipeline.prune``
               calls it: TensorSplit batches (shuffled by index, CropFlip augmentation,
               normalization), mlbench's optimizer and scheduler, MaskHold, Precision(cpu,
               off), per-epoch metric accumulation, and the epoch's metrics logged with
               ``Tracker.log_metrics`` into a real MLflow sqlite store under an open run.

The data is mlbench's ``synthetic`` dataset at 3x32x32 with 10 classes (CIFAR-shaped),
the model resnet20, pruned to compression 8 with ``global_weight`` (strategy -> allocate
-> apply_masks). All three start from copies of one seeded model.

Validation: ``fit`` evaluates the val split after every epoch. Validation is evaluation,
not training, so it is kept out of training throughput (as airbench does) by giving the
val split a single sample; that one forward pass is still inside (b)'s timed block and
counts against mlbench (it is listed in the breakdown), so nothing is subtracted.

Each timed block is one epoch: ``--steps`` batches of ``--batch-size`` samples. Each
variant is warmed up with one block, then the repeats are interleaved (a, m, b, then
b, m, a, ...) so load from other processes on the machine hits all variants alike.

How to read it: the ratio (b)/(a) of throughputs, paired per repeat; its median is the
figure (target >= 0.97 on CPU). Per-epoch costs (drawing the epoch's order and
augmentation parameters, logging, the one-sample val pass) are amortized over
``--steps`` batches; a real CIFAR-10 epoch at batch 128 has ~350. The breakdown times
each piece of (b)'s extra work alone (data, mask hooks, logging, val) as a share of a
bare block.

``faults/step`` is the median number of minor page faults per step of a variant. With
glibc's default malloc, a training step that frees ~100 MB of activations may hand them
back to the OS and fault them in again next step: tens of thousands of faults and
20-45 ms of kernel time per step. Which variant pays depends on the heap's history, not
on its code, so a ratio far from 1 with very unequal faults/step measures the allocator.
``--steady-malloc`` fixes glibc's thresholds for the whole process (all variants alike).

Run:
    python benchmarks/finetune_throughput.py --steps 20 --repeats 5 --json out.json
    python benchmarks/finetune_throughput.py --steady-malloc
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import Figure, Section
from torch import Tensor, nn

from mlbench._malloc import steady_malloc
from mlbench.config import DataConfig, OptimConfig, PruneConfig, RunConfig, TrackingConfig
from mlbench.data._augment import CropFlip
from mlbench.data._tensor import TensorSplit
from mlbench.device import Precision
from mlbench.engine import evaluate, fit
from mlbench.kinds import kind_of
from mlbench.masks import MaskHold, Masks, apply_masks
from mlbench.recipe import Setup, prepare
from mlbench.setup import generator, score_batches
from mlbench.tracking import Tracker

TITLE = "Fine-tuning throughput"
VARIANTS = ("bare", "masks", "mlbench")
VAL_FRACTION = 1e-9  # holds out exactly one sample: the smallest val split there is
SEED = 0


@dataclass
class Bench:
    """Everything the timed blocks need, built once before any timing."""

    setup: Setup
    masks: Masks
    batches: list[tuple[Tensor, Tensor]]  # (a)'s in-memory batches: (B, 3, 32, 32), (B,)
    run: dict[str, Callable[[], None]]  # variant -> one timed block
    hold: MaskHold  # (m)'s hold, to time its hooks alone
    tracker: Tracker
    steps: int
    batch_size: int


def get_args_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="batches per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per variant")
    parser.add_argument("--batch-size", type=int, default=128, help="samples per batch")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's own)"
    )
    parser.add_argument(
        "--steady-malloc",
        action="store_true",
        help="glibc only: never hand freed memory back to the OS (removes page-fault noise)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    return parser


def run_config(steps: int, batch_size: int) -> RunConfig:
    """resnet20 on CIFAR-shaped synthetic data whose training split is exactly one block."""
    data = DataConfig(
        dataset="synthetic",
        synthetic_shape="3x32x32",
        synthetic_classes=10,
        synthetic_samples=steps * batch_size + 1,  # + the one val sample
        val_fraction=VAL_FRACTION,
        augment=True,
    )
    finetune = OptimConfig(
        epochs=1, batch_size=batch_size, lr=0.01, momentum=0.9, nesterov=False, weight_decay=5e-4
    )
    prune = PruneConfig(strategy="global_weight", compression=8.0)
    return RunConfig(
        data=data, model="resnet20", finetune=finetune, prune=prune, seed=SEED, device="cpu",
        amp=False,
    )


def bare_sgd(model: nn.Module) -> torch.optim.SGD:
    """The optimizer of the bare loop: the same SGD settings as ``run_config``."""
    return torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, nesterov=False, weight_decay=5e-4
    )


def bare_loop(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: Sequence[tuple[Tensor, Tensor]]
) -> None:
    """(a): the textbook training loop over batches already in memory."""
    model.train()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()


def build(steps: int, batch_size: int, tracker: Tracker) -> Bench:
    """Data, one seeded model copied three times, masks, and the three timed blocks."""
    setup = prepare(run_config(steps, batch_size))
    train = setup.splits.train
    # ``synthetic`` registers no augmentation; give its training split the one the cifar10
    # loader gives (RandomCrop(32, padding=4) + flip, batched), so (b) pays for CropFlip.
    assert isinstance(train, TensorSplit) and train.augmentation is None
    train.augmentation = CropFlip(pad=4)
    assert len(train) == steps * batch_size, (len(train), steps * batch_size)
    assert len(setup.splits.val) == 1
    base = copy.deepcopy(setup.model.state_dict())
    masks = kind_of(setup.cfg.prune.strategy).prune(  # global_weight: allocate(keep, "global")
        setup, score_batches(setup)).masks
    setup.model.load_state_dict(base)  # the kind applied them: start from the base again

    # (a) the same training samples, normalized, unshuffled, unaugmented, materialized.
    batches = [(x.clone(), y.clone()) for x, y in train.batches(batch_size)]
    bare = copy.deepcopy(setup.model)
    bare.load_state_dict(base)
    bare_opt = bare_sgd(bare)

    masked = copy.deepcopy(setup.model)
    masked.load_state_dict(base)
    apply_masks(masked, masks)
    masked_opt = bare_sgd(masked)
    hold = MaskHold(masked, masked_opt, masks)  # stays on this optimizer for the whole run

    apply_masks(setup.model, masks)  # (b) trains setup.model itself, as recipe.finetune does
    gen = generator(SEED)
    precision = Precision(setup.device, False)
    epoch = 0

    def mlbench_epoch() -> None:
        nonlocal epoch
        epoch += 1
        fit(
            setup.model,
            train,
            setup.splits.val,
            setup.cfg.finetune,
            generator=gen,
            precision=precision,
            masks=masks,
            augment=setup.cfg.data.augment,
            on_epoch=lambda e, m: tracker.log_metrics(m, step=e),
            epochs=[epoch],
        )

    run = {
        "bare": lambda: bare_loop(bare, bare_opt, batches),
        "masks": lambda: bare_loop(masked, masked_opt, batches),
        "mlbench": mlbench_epoch,
    }
    return Bench(setup, masks, batches, run, hold, tracker, steps, batch_size)


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def require_steady_malloc() -> None:
    """Fix glibc's malloc thresholds for every variant alike (what the mlbench CLI does)."""
    if not steady_malloc():
        raise SystemExit("--steady-malloc needs glibc's mallopt")


def minor_faults() -> int:
    """Minor page faults of this process so far (pages the allocator got back from the OS)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@dataclass
class Timings:
    """Per variant, one entry per repeat: wall seconds and minor page faults of the block."""

    seconds: dict[str, list[float]]
    faults: dict[str, list[int]]


def measure(bench: Bench, repeats: int) -> Timings:
    """Warm up every variant once, then time ``repeats`` interleaved blocks of each."""
    for name in VARIANTS:
        bench.run[name]()
    out = Timings({name: [] for name in VARIANTS}, {name: [] for name in VARIANTS})
    for r in range(repeats):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for name in order:
            faults = minor_faults()
            out.seconds[name].append(timed(bench.run[name]))
            out.faults[name].append(minor_faults() - faults)
        done = ", ".join(f"{name} {out.seconds[name][-1]:.2f}s" for name in VARIANTS)
        print(f"repeat {r + 1}/{repeats}: {done}", file=sys.stderr, flush=True)
    return out


def work_costs(bench: Bench, samples: int = 5) -> dict[str, float]:
    """Median seconds, per timed block, of each piece of mlbench's extra work done alone.

    ``data``: one pass of shuffled, CropFlip-augmented, normalized batches (the whole
    data path of an epoch); ``masks``: MaskHold's two optimizer hooks (zero pruned
    gradients, re-mask weights), called ``steps`` times; ``log``: one
    ``Tracker.log_metrics`` of an epoch's six metrics; ``val``: the one-sample
    validation pass ``fit`` runs after the epoch.
    """
    setup = bench.setup
    gen = generator(SEED + 1)  # not (b)'s generator: leaves its stream alone
    names = ("train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5", "lr")
    metrics = dict.fromkeys(names, 0.5)

    def data_pass() -> None:
        for _ in setup.splits.train.batches(
            bench.batch_size, shuffle=True, augment=True, generator=gen, drop_last=True
        ):
            pass

    def mask_hooks() -> None:
        for _ in range(bench.steps):  # the hooks take no arguments they use; grads are set
            bench.hold._mask_grads()
            bench.hold._mask_weights()

    work = {
        "data": data_pass,
        "masks": mask_hooks,
        "log": lambda: bench.tracker.log_metrics(metrics, step=0),
        "val": lambda: evaluate(setup.model, setup.splits.val, bench.batch_size),
    }
    return {k: statistics.median(timed(fn) for _ in range(samples)) for k, fn in work.items()}


def summarize(timings: Timings, samples: int, steps: int) -> dict[str, object]:
    """Throughputs per repeat, paired ratios to the bare loop (median, min, max), and the
    median minor page faults per step of each variant."""
    rate = {k: [samples / s for s in v] for k, v in timings.seconds.items()}
    out: dict[str, object] = {"samples_per_s": rate}
    for name in ("masks", "mlbench"):
        ratios = [b / a for a, b in zip(rate["bare"], rate[name], strict=True)]
        out[f"ratio_{name}"] = {
            "per_repeat": ratios,
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        }
    out["faults_per_step"] = {k: statistics.median(v) / steps for k, v in timings.faults.items()}
    return out


def report(summary: dict[str, object], costs: dict[str, float], bare_block: float) -> str:
    """A small table: throughput per repeat, ratios, page faults and the work timed alone."""
    rate: dict[str, list[float]] = summary["samples_per_s"]  # type: ignore[assignment]
    faults: dict[str, float] = summary["faults_per_step"]  # type: ignore[assignment]
    repeats = "".join(f"{f'r{i}':>8}" for i in range(len(rate["bare"])))
    lines = [f"{'samples/s':<9}{repeats}{'median':>8}{'faults/step':>13}"]
    for name in VARIANTS:
        row = "".join(f"{v:>8.1f}" for v in [*rate[name], statistics.median(rate[name])])
        lines.append(f"{name:<9}{row}{faults[name]:>13.0f}")
    lines.append("")
    for name, label in (("mlbench", "(b)/(a) mlbench / bare"), ("masks", "(m)/(a) masks / bare")):
        r: dict[str, float] = summary[f"ratio_{name}"]  # type: ignore[assignment]
        lines.append(
            f"{label:<24} median {r['median']:.3f}   min {r['min']:.3f}   max {r['max']:.3f}"
        )
    lines.append("")
    lines.append("mlbench's extra work per block, timed alone (share of a median bare block):")
    for name, sec in costs.items():
        lines.append(f"  {name:<5} {sec * 1e3:8.1f} ms   {sec / bare_block:6.2%}")
    lines.append("Validation is left out of training throughput (val split = 1 sample, its")
    lines.append("single forward pass still counted inside (b)).")
    return "\n".join(lines)


@dataclass
class Result:
    """One run of the benchmark: what ``main`` prints and what the suite reports."""

    timings: Timings
    summary: dict[str, object]  # see ``summarize``
    costs: dict[str, float]  # see ``work_costs``
    load: tuple[float, float]  # 1-minute load average before and after
    samples: int  # per timed block

    def bare_block(self) -> float:
        """Median seconds of a bare block."""
        return statistics.median(self.timings.seconds["bare"])

    def ratio(self, name: str = "mlbench") -> dict[str, float]:
        """Median, min and max of the paired per-repeat throughput ratio ``name``/bare."""
        return self.summary[f"ratio_{name}"]  # type: ignore[return-value]

    def median_rate(self, name: str) -> float:
        """Median samples/s of variant ``name``."""
        rates: dict[str, list[float]] = self.summary["samples_per_s"]  # type: ignore[assignment]
        return statistics.median(rates[name])


def measure_throughput(steps: int, repeats: int, batch_size: int) -> Result:
    """Build the three variants on a fresh MLflow sqlite store, time them interleaved,
    and time mlbench's extra work piece by piece. Threads and malloc: the caller's."""
    if steps < 1 or repeats < 1 or batch_size < 2:
        raise ValueError("steps and repeats must be >= 1 and batch_size >= 2")
    load_before = os.getloadavg()[0]  # other processes' load shows here; ours adds ~threads
    with tempfile.TemporaryDirectory(prefix="mlbench-bench-") as tmp:
        tracker = Tracker(
            TrackingConfig(tracking_uri=f"sqlite:///{tmp}/mlflow.db", experiment="bench",
                           register=False)
        )
        with tracker.run("benchmark", "finetune-throughput"):
            bench = build(steps, batch_size, tracker)
            timings = measure(bench, repeats)
            costs = work_costs(bench)
    samples = steps * batch_size
    return Result(timings, summarize(timings, samples, steps), costs,
                  (load_before, os.getloadavg()[0]), samples)


def section(quick: bool) -> Section:
    """The suite's section: 20 steps x 5 repeats (quick: 5 x 2), batch 128, as configured
    by the caller (the suite runs with steady malloc, as the mlbench CLI does)."""
    steps, repeats, batch = (5, 2, 128) if quick else (20, 5, 128)
    result = measure_throughput(steps, repeats, batch)
    name = f"fine-tuning throughput, resnet20 pruned x8, batch {batch}, {steps} steps per block"
    bare = result.median_rate("bare")
    figures = [
        Figure(name, result.median_rate("mlbench"), bare, "bare PyTorch loop, in-memory batches",
               unit="samples/s", target=">= 0.97", ratio=result.ratio()["median"]),
        Figure("the same, masks held (MaskHold) but no other mlbench part",
               result.median_rate("masks"), bare, "bare PyTorch loop, in-memory batches",
               unit="samples/s", ratio=result.ratio("masks")["median"]),
    ]
    r = result.ratio()
    faults: dict[str, float] = result.summary["faults_per_step"]  # type: ignore[assignment]
    block = result.bare_block()
    notes = [
        f"Ratio = median of the {repeats} paired per-repeat ratios (min {r['min']:.3f}, "
        f"max {r['max']:.3f}); details in benchmarks/README.md.",
        "Minor page faults per step: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in faults.items()) + ".",
        "mlbench's extra work per block, timed alone (share of a bare block): "
        + ", ".join(f"{k} {sec * 1e3:.1f} ms ({sec / block:.2%})"
                    for k, sec in result.costs.items()) + ".",
    ]
    return Section(TITLE, figures, notes, result.load)


def main(argv: Sequence[str] | None = None) -> int:
    """Build, warm up, measure interleaved, print the table, write --json."""
    args = get_args_parser().parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.batch_size < 2:
        raise SystemExit("--steps and --repeats must be >= 1 and --batch-size >= 2")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.steady_malloc:
        require_steady_malloc()
    result = measure_throughput(args.steps, args.repeats, args.batch_size)
    load = result.load
    print(
        f"resnet20, synthetic 3x32x32 / 10 classes, batch {args.batch_size}, {args.steps} steps "
        f"({result.samples} samples) per block, {args.repeats} repeats, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"malloc {'steady' if args.steady_malloc else 'default'}, "
        f"1-min load average {load[0]:.1f} before, {load[1]:.1f} after"
    )
    print(report(result.summary, result.costs, result.bare_block()))
    if args.json is not None:
        out = {
            "model": "resnet20",
            "data": "synthetic 3x32x32, 10 classes",
            "batch_size": args.batch_size,
            "steps": args.steps,
            "repeats": args.repeats,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "steady_malloc": args.steady_malloc,
            "load_average_before_after": load,
            "seconds": result.timings.seconds,
            **result.summary,
            "work_seconds_per_block": result.costs,
        }
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
