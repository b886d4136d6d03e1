"""Measured speedup of channel (structured) against masked (unstructured) pruning on CPU.

For resnet20 on CIFAR-shaped inputs (3x32x32) and LeNet-300-100 (``mlp``, 1x28x28),
at 2x, 4x and 8x compression: a ``global_l1_channel`` model (a smaller dense network)
and a ``global_weight`` masked model (same shapes, zeros in the weights), each timed
against the dense model with ``mlbench.speed.measured_speedup``, exactly as a prune
run does (interleaved calibrated pairs, geometric mean with a 95% interval; latency at
batch 1, time per batch at the preset's fine-tuning batch of 128). Weights are random:
speed does not depend on their values.

And what the measured-speed step costs a run (issue 19/21: under 5% of the run it
measures): on the bundled digits, lenet and resnet20, one real masked fine-tuning epoch
(``engine.fit``, the defaults' batch 64) is timed, then the step a one-epoch run would
take, its budget the run's share (``speed.COST_SHARE`` of that epoch alone, less than a
real run's elapsed time gives it); the figure is epoch time / measuring time.

    python benchmarks/structured_speed.py [--quick] [--threads N]

writes this section into benchmarks/RESULTS.md (replacing its previous version);
``benchmarks/run.py`` runs it as the ``structured`` section. On a loaded machine
``--threads 1`` gives steadier figures: with more runnable processes than cores, the
OpenMP threads of one forward pass wait on each other.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from _common import Figure, Section, load1

from mlbench.config import RunConfig
from mlbench.data import load_dataset
from mlbench.device import Precision
from mlbench.engine import fit
from mlbench.masks import allocate, apply_masks, keep_count, prunable_parameters
from mlbench.metrics import size_and_ops
from mlbench.models import classifier_name, create_model
from mlbench.speed import COST_SHARE, measured_speedup, speed_verdict
from mlbench.strategies import STRATEGIES
from mlbench.structured import channel_sizes, prune_channels

TITLE = "Structured against unstructured: measured speedup"
# model: (input shape, training samples, fine-tuning batch and epochs of its preset)
CASES = {
    "resnet20": ((3, 32, 32), 45_000, 128, 40),  # projects/cifar10-resnet20.yaml
    "mlp": ((1, 28, 28), 54_000, 128, 10),  # MNIST as projects/mnist-lenet.yaml
}
CPU = torch.device("cpu")
DIGITS = (1, 8, 8)  # the bundled digits' input shape


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
    shape, _samples, batch, _epochs = CASES[name]
    torch.manual_seed(0)
    dense = create_model(name, shape, 10).eval()
    classifier = classifier_name(dense)
    channel = prune_channels(dense, "global_l1_channel", c, shape, classifier).model.eval()
    masked, masks = masked_copy(dense, classifier, c)
    theory = {"channels": channel_sizes(dense, channel, shape)["speedup"],
              "masks": size_and_ops(masked, masks, shape)[0]["speedup"]}
    figures, notes = [], []
    for kind, model in (("channels", channel), ("masks", masked)):
        m = measured_speedup(dense, model, shape, batch, CPU, max_pairs=repeats)
        label = f"{name} {c:g}x {kind} (theoretical {theory[kind]:.2f}x)"
        figures.append(Figure(f"{label}: latency, batch 1", m["latency_ms"] / 1000,
                              m["base_latency_ms"] / 1000, "the dense model",
                              ratio=m["measured_speedup"]))
        figures.append(Figure(f"{label}: time per batch of {batch}", batch / m["throughput"],
                              batch / m["base_throughput"], "the dense model",
                              ratio=m["measured_speedup_throughput"]))
        notes.append(
            f"{name} {c:g}x {kind}: batch 1 {m['measured_speedup']:.2f} "
            f"[{m['measured_speedup_lo']:.2f}, {m['measured_speedup_hi']:.2f}] "
            f"({verdict(m, '')}, {m['speed_pairs']:.0f} pairs of {m['speed_calls']:.0f} "
            f"calls); batch {batch} {m['measured_speedup_throughput']:.2f} "
            f"[{m['measured_speedup_throughput_lo']:.2f}, "
            f"{m['measured_speedup_throughput_hi']:.2f}] ({verdict(m, '_throughput')}); "
            f"1-minute load {load1():.1f}.")
    return figures, notes


def verdict(m: dict[str, float], suffix: str) -> str:
    """``faster``, ``slower`` or ``no measurable speedup`` for one of the two intervals."""
    return speed_verdict(m[f"measured_speedup{suffix}_lo"], m[f"measured_speedup{suffix}_hi"])


def digits_epoch(name: str) -> tuple[torch.nn.Module, torch.nn.Module, float, int]:
    """(dense, 2x channel-pruned copy, seconds of one masked fine-tuning epoch, batch)."""
    cfg = RunConfig.from_flat({"model": name, "device": "cpu"})
    splits = load_dataset(cfg.data, CPU)
    torch.manual_seed(0)
    dense = create_model(name, DIGITS, splits.info.num_classes)
    classifier = classifier_name(dense)
    masked, masks = masked_copy(dense, classifier, 4.0)
    batch = cfg.finetune.batch_size
    start = time.perf_counter()
    fit(masked, splits.train, splits.val, dataclasses.replace(cfg.finetune, epochs=1),
        generator=torch.Generator().manual_seed(0), precision=Precision(CPU, False),
        masks=masks)
    epoch_s = time.perf_counter() - start
    channel = prune_channels(dense, "global_l1_channel", 2.0, DIGITS, classifier).model
    return dense.eval(), channel.eval(), epoch_s, batch


def cost_section_part() -> tuple[list[Figure], list[str]]:
    """What the measured-speed step costs against one fine-tuning epoch on digits."""
    figures, notes = [], []
    for name in ("lenet", "resnet20"):
        load = load1()
        dense, channel, epoch_s, batch = digits_epoch(name)
        budget = COST_SHARE * epoch_s
        m = measured_speedup(dense, channel, DIGITS, batch, CPU, budget_s=budget)
        figures.append(Figure(f"digits {name}: measuring speed (2x channels) against one "
                              "fine-tuning epoch", m["speed_seconds"], epoch_s,
                              "one masked fine-tuning epoch", target=">= 20 (under 5%)"))
        notes.append(
            f"digits {name}: one fine-tuning epoch {epoch_s:.2f} s; measuring "
            f"{m['speed_seconds']:.3f} s = {100 * m['speed_seconds'] / epoch_s:.1f}% of it "
            f"(budget {budget:.3f} s, {m['speed_pairs']:.0f} + "
            f"{m['speed_pairs_throughput']:.0f} pairs); measured 2x-channel speedup batch 1 "
            f"{m['measured_speedup']:.2f} [{m['measured_speedup_lo']:.2f}, "
            f"{m['measured_speedup_hi']:.2f}] ({verdict(m, '')}), batch {batch} "
            f"{m['measured_speedup_throughput']:.2f} "
            f"[{m['measured_speedup_throughput_lo']:.2f}, "
            f"{m['measured_speedup_throughput_hi']:.2f}] ({verdict(m, '_throughput')}); "
            f"1-minute load {load:.1f} before, {load1():.1f} after.")
    return figures, notes


def section(quick: bool, repeats: int = 60) -> Section:
    """The suite's section: 4x only in quick mode, else 2x, 4x and 8x.

    The speedups take up to ``repeats`` pairs (more than a run's default 30, for narrower
    intervals on a shared machine, with no cost cap); then what a run's own measurement
    costs against one fine-tuning epoch on digits.
    """
    before = load1()
    figures, notes = cost_section_part()
    for name in CASES:
        for c in (4.0,) if quick else (2.0, 4.0, 8.0):
            f, n = measure_case(name, c, 3 if quick else repeats)
            figures += f
            notes += n
    notes += [
        "Ratio = dense time / pruned time (the run's `measured_speedup` and "
        "`measured_speedup_throughput`: geometric mean of interleaved pairs, 95% interval "
        "in the notes), timed as in a prune run; "
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
    parser.add_argument("--quick", action="store_true", help="4x only, 3 pairs")
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
