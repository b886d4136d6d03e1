"""Measured speedup of channel (structured) against masked (unstructured) pruning on CPU.

For resnet20 on CIFAR-shaped inputs (3x32x32) and LeNet-300-100 (``mlp``, 1x28x28),
at 2x, 4x and 8x compression: a ``global_l1_channel`` model (smaller dense network)
and a ``global_weight`` masked model (same shapes, zeros in the weights), each timed
against the dense model with ``mlbench.speed.measured_speedup`` (interleaved,
medians; batch 1 latency and batch 64 throughput). Also the cost of that measurement
next to the cost of one fine-tuning epoch of the same model on CIFAR-10 / MNIST
sized data (steps x the measured time of a training step). Weights are random: speed
does not depend on their values. Writes a section to benchmarks/RESULTS.md.

    python benchmarks/structured_speed.py [--threads N] [--repeats R]

On a loaded machine, ``--threads 1`` gives steadier figures: with more runnable
processes than cores, OpenMP threads of one forward pass wait on each other.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mlbench.masks import allocate, apply_masks, keep_count, prunable_parameters
from mlbench.metrics import size_and_ops
from mlbench.models import classifier_name, create_model
from mlbench.speed import measured_speedup
from mlbench.strategies import STRATEGIES
from mlbench.structured import channel_sizes, prune_channels

CASES = {"resnet20": ((3, 32, 32), 50_000), "mlp": ((1, 28, 28), 60_000)}
BATCH = 64


def step_seconds(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """Median seconds of one SGD training step at BATCH."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(BATCH, *shape), torch.randint(0, 10, (BATCH,))
    times = []
    for _ in range(6):
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    load_start = os.getloadavg()
    for name, (shape, samples) in CASES.items():
        dense = create_model(name, shape, 10).eval()
        classifier = classifier_name(dense)
        epoch_s = step_seconds(create_model(name, shape, 10), shape) * samples / BATCH
        for c in (2.0, 4.0, 8.0):
            channel = prune_channels(dense, "global_l1_channel", c, shape, classifier).model
            masked = create_model(name, shape, 10).eval()
            masked.load_state_dict(dense.state_dict())
            prunable = prunable_parameters(masked, classifier)
            scores = STRATEGIES.get("global_weight")(masked, prunable, [], torch.Generator())
            masks = allocate(scores, keep_count(masked, prunable, c), "global")
            apply_masks(masked, masks)
            for kind, model in (("structured", channel), ("unstructured", masked)):
                m = measured_speedup(dense, model, shape, BATCH, torch.device("cpu"),
                                     repeats=args.repeats)
                sizes = (channel_sizes(dense, model, shape) if kind == "structured"
                         else size_and_ops(model, masks, shape)[0])
                rows.append((name, c, kind, m, sizes, epoch_s, os.getloadavg()[0]))
                print(name, c, kind, round(m["measured_speedup"], 2),
                      round(m["measured_speedup_throughput"], 2), flush=True)
    write(rows, load_start)


def write(rows: list, load_start: tuple[float, float, float]) -> None:
    lines = [
        "",
        "## Structured against unstructured: measured speedup (CPU)",
        "",
        f"Made by `python benchmarks/structured_speed.py` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch threads "
        f"{torch.get_num_threads()}, load average at start {load_start[0]:.1f} (2 cores). "
        "Measured speedup = dense time / pruned time, interleaved, medians; theoretical "
        "speedup = MACs / MACs kept. `global_l1_channel` removes channels; "
        "`global_weight` masks weights (dense kernels, so about 1x expected). Cost: the "
        "speed measurement of one run (both models) against one fine-tuning epoch of the "
        "same model on CIFAR-10 / MNIST sized data; a run has at least one epoch. Load: "
        "1-minute load average when the row was measured.",
        "",
        "| model | compression | kind | theoretical | measured (batch 1) | measured (batch 64) "
        "| dense latency ms | pruned latency ms | measuring s | % of one epoch | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c, kind, m, sizes, epoch_s, load in rows:
        theory = f"{sizes['speedup']:.2f}"
        lines.append(
            f"| {name} | {c:g}x | {kind} | {theory} | {m['measured_speedup']:.2f} | "
            f"{m['measured_speedup_throughput']:.2f} | {m['base_latency_ms']:.2f} | "
            f"{m['latency_ms']:.2f} | {m['speed_seconds']:.2f} | "
            f"{100 * m['speed_seconds'] / epoch_s:.1f} | {load:.1f} |"
        )
    path = Path(__file__).with_name("RESULTS.md")
    text = path.read_text()
    marker = "\n## Structured against unstructured: measured speedup (CPU)"
    if marker in text:
        text = text[: text.index(marker)]
    path.write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
