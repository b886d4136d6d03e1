"""Measured speedup of channel (structured) against masked (unstructured) pruning on CPU.

For resnet20 on CIFAR-shaped inputs (3x32x32) and LeNet-300-100 (``mlp``, 1x28x28),
at 2x, 4x and 8x compression: a ``global_l1_channel`` model (a smaller dense network)
and a ``global_weight`` masked model (same shapes, zeros in the weights), each timed
against the dense model with ``mlbench.speed.measured_speedup``, exactly as a prune
run does (interleaved, medians; latency at batch 1, time per batch at the preset's
fine-tuning batch of 128). Also what that measurement costs a run, against one
fine-tuning epoch (steps x the measured time of one training step) and against the
preset's whole fine-tuning. Weights are random: speed does not depend on their values.

    python benchmarks/structured_speed.py [--quick] [--threads N]

writes this section into benchmarks/RESULTS.md (replacing its previous version);
``benchmarks/run.py`` runs it as the ``structured`` section. On a loaded machine
``--threads 1`` gives steadier figures: with more runnable processes than cores, the
OpenMP threads of one forward pass wait on each other.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import Figure, Section, load1

from mlbench.masks import allocate, apply_masks, keep_count, prunable_parameters
from mlbench.metrics import size_and_ops
from mlbench.models import classifier_name, create_model
from mlbench.speed import measured_speedup
from mlbench.strategies import STRATEGIES
from mlbench.structured import channel_sizes, prune_channels

TITLE = "Structured against unstructured: measured speedup"
# model: (input shape, training samples, fine-tuning batch and epochs of its preset)
CASES = {
    "resnet20": ((3, 32, 32), 45_000, 128, 40),  # projects/cifar10-resnet20.yaml
    "mlp": ((1, 28, 28), 54_000, 128, 10),  # MNIST as projects/mnist-lenet.yaml
}
CPU = torch.device("cpu")
RUN_REPEATS = 10  # --speed-repeats' default: what measuring costs a run


def step_seconds(model: torch.nn.Module, shape: tuple[int, ...], batch: int) -> float:
    """Median seconds of one SGD training step at ``batch``."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    times = []
    for _ in range(6):
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[2]


def masked_copy(dense: torch.nn.Module, classifier: str, c: float
                ) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """A copy of ``dense`` with global magnitude masks for compression ``c``."""
    masked = copy.deepcopy(dense)
    prunable = prunable_parameters(masked, classifier)
    scores = STRATEGIES.get("global_weight")(masked, prunable, [], torch.Generator())
    masks = allocate(scores, keep_count(masked, prunable, c), "global")
    apply_masks(masked, masks)
    return masked, masks


def measure_case(name: str, c: float, repeats: int) -> tuple[list[Figure], list[str]]:
    shape, samples, batch, epochs = CASES[name]
    torch.manual_seed(0)
    dense = create_model(name, shape, 10).eval()
    classifier = classifier_name(dense)
    channel = prune_channels(dense, "global_l1_channel", c, shape, classifier).model.eval()
    masked, masks = masked_copy(dense, classifier, c)
    theory = {"channels": channel_sizes(dense, channel, shape)["speedup"],
              "masks": size_and_ops(masked, masks, shape)[0]["speedup"]}
    epoch_s = step_seconds(create_model(name, shape, 10), shape, batch) * samples / batch
    figures, notes = [], []
    for kind, model in (("channels", channel), ("masks", masked)):
        m = measured_speedup(dense, model, shape, batch, CPU, repeats=repeats)
        cost = measured_speedup(dense, model, shape, batch, CPU, repeats=RUN_REPEATS)
        m["speed_seconds"] = cost["speed_seconds"]  # what a run (default repeats) spends
        label = f"{name} {c:g}x {kind} (theoretical {theory[kind]:.2f}x)"
        figures.append(Figure(f"{label}: latency, batch 1", m["latency_ms"] / 1000,
                              m["base_latency_ms"] / 1000, "the dense model",
                              ratio=m["measured_speedup"]))
        figures.append(Figure(f"{label}: time per batch of {batch}", batch / m["throughput"],
                              batch / m["base_throughput"], "the dense model",
                              ratio=m["measured_speedup_throughput"]))
        notes.append(
            f"{name} {c:g}x {kind}: measuring cost {m['speed_seconds']:.2f} s = "
            f"{100 * m['speed_seconds'] / epoch_s:.2f}% of one fine-tuning epoch "
            f"({epoch_s:.0f} s), {100 * m['speed_seconds'] / (epoch_s * epochs):.3f}% of the "
            f"preset's {epochs} epochs; 1-minute load {load1():.1f}.")
    return figures, notes


def section(quick: bool, repeats: int = 40) -> Section:
    """The suite's section: 4x only in quick mode, else 2x, 4x and 8x.

    The figures are medians of ``repeats`` alternations (batch 1; half as many at the
    batch), more than a run takes, for steadier figures on a shared machine; the cost is
    that of a run's own measurement (``RUN_REPEATS``).
    """
    before = load1()
    figures, notes = [], []
    for name in CASES:
        for c in (4.0,) if quick else (2.0, 4.0, 8.0):
            f, n = measure_case(name, c, 3 if quick else repeats)
            figures += f
            notes += n
    notes += [
        "Ratio = dense time / pruned time (the run's `measured_speedup` and "
        "`measured_speedup_throughput`), timed turn about as in a prune run; "
        f"torch threads {torch.get_num_threads()}. Masked models run dense kernels, so "
        "about 1x is expected; channel-pruned ones are smaller dense networks.",
    ]
    return Section(TITLE, figures, notes, (before, load1()))


def splice(text: str, block: str) -> str:
    """RESULTS.md with this section replaced (or appended), the rest untouched."""
    head = f"\n## {TITLE}\n"
    if head in text:
        before, rest = text.split(head, 1)
        after = rest.split("\n## ", 1)
        text = before.rstrip("\n") + "\n" + ("\n## " + after[1] if len(after) > 1 else "")
    return text.rstrip("\n") + "\n" + block


def main(argv: Sequence[str] | None = None) -> int:
    from run import render  # the suite's own rendering, one section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4x only, 3 repeats")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    sec = section(args.quick)
    sec.seconds = time.perf_counter() - start
    rendered = render([sec], "", args.quick, sec.seconds, [], [])
    made = (f"Made by `python benchmarks/structured_speed.py --threads {args.threads}"
            f"{' --quick' if args.quick else ''}` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, apart from the suite.")
    block = f"\n## {TITLE}\n\n{made}\n" + rendered.split(f"\n## {TITLE}\n", 1)[1]
    path = Path(__file__).with_name("RESULTS.md")
    path.write_text(splice(path.read_text(), block))
    for f in sec.figures:
        print(f"{f.name}: {f.ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
