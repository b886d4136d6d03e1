"""Mask speed: global-magnitude masks for resnet50 and gradient scores for resnet20.

Global magnitude, torchvision ``resnet50`` (25.6M weights, random init) at compression
10, timed as mlbench does it: ``keep_count``, the ``global_weight`` scores, then
``allocate`` (linear-time selection, exactly ``keep`` weights, ties to the earlier
weight). Baselines, measured side by side in the same process:

  kthvalue     |w|, one concatenation, ``torch.kthvalue`` for the threshold, one
               comparison per tensor: the algorithmic limit of a selection on the CPU
               (it does not make the count exact when scores tie).
  shrinkbench  ShrinkBench's way, reimplemented: scores as numpy arrays, concatenated,
               ``np.quantile`` for the threshold, ``score > threshold`` per tensor.

Gradient scores, mlbench's resnet20 (CIFAR, 0.27M weights): ``global_grad``'s scorer
(|w * dL/dw|, L summed over the scoring batches, model in eval mode, gradients by
``torch.autograd.grad``). Baseline: the bare forward and backward over the same batches
(``loss.backward()``, then ``zero_grad``), the least work any gradient score needs.
Two sizes: one batch of 128 (what ShrinkBench scores on: one training batch) and
mlbench's default ``score_batches`` = 4 at the CIFAR presets' batch 128.

Run:
    python benchmarks/mask_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from _common import Figure, Section, interleaved, load1, median
from torch import Tensor, nn

from mlbench.masks import Masks, allocate, keep_count, prunable_parameters
from mlbench.models import classifier_name, create_model
from mlbench.strategies import STRATEGIES, strategy_allocation

Batch = tuple[Tensor, Tensor]
COMPRESSION = 10.0

TITLE = "Masks and scores"


def mlbench_masks(model: nn.Module, prunable: dict[str, nn.Parameter], strategy: str,
                  batches: Sequence[Batch] = ()) -> Masks:
    """Masks as the masks kind (``mlbench.kinds``) makes them: keep count, scores, allocation."""
    keep = keep_count(model, prunable, COMPRESSION)
    scores = STRATEGIES.get(strategy)(model, prunable, batches, torch.Generator().manual_seed(0))
    return allocate(scores, keep, strategy_allocation(strategy))


def kthvalue_masks(prunable: dict[str, nn.Parameter], keep: int) -> Masks:
    """The algorithmic limit: one selection over the concatenated |w|, then compare."""
    flat = torch.cat([p.detach().abs().flatten() for p in prunable.values()])
    threshold = torch.kthvalue(flat, flat.numel() - keep + 1).values
    parts = flat.split([p.numel() for p in prunable.values()])
    return {n: s.view(p.shape) >= threshold
            for (n, p), s in zip(prunable.items(), parts, strict=True)}


def shrinkbench_masks(prunable: dict[str, nn.Parameter], keep: int) -> dict[str, np.ndarray]:
    """ShrinkBench's global magnitude: numpy scores, ``np.quantile`` threshold, compare."""
    scores = {n: np.abs(p.detach().cpu().numpy()) for n, p in prunable.items()}
    flat = np.concatenate([s.flatten() for s in scores.values()])
    threshold = np.quantile(flat, 1 - keep / flat.size)
    return {n: s > threshold for n, s in scores.items()}


def bare_backward(model: nn.Module, batches: Sequence[Batch]) -> None:
    """The least a gradient score needs: forward and backward over the batches."""
    model.eval()
    for x, y in batches:
        F.cross_entropy(model(x), y, reduction="sum").backward()
    model.zero_grad(set_to_none=True)


def global_magnitude(repeats: int) -> list[Figure]:
    """resnet50 at compression 10: mlbench against kthvalue and ShrinkBench's quantile."""
    torch.manual_seed(0)
    model = create_model("resnet50", (3, 224, 224), 1000)
    prunable = prunable_parameters(model, classifier_name(model))
    keep = keep_count(model, prunable, COMPRESSION)
    kept = sum(int(m.sum()) for m in mlbench_masks(model, prunable, "global_weight").values())
    assert kept == keep, (kept, keep)  # exact, unlike either baseline under ties
    seconds = interleaved({
        "mlbench": lambda: mlbench_masks(model, prunable, "global_weight"),
        "kthvalue": lambda: kthvalue_masks(prunable, keep),
        "shrinkbench": lambda: shrinkbench_masks(prunable, keep),
    }, repeats)
    ours = median(seconds["mlbench"])
    name = f"global_weight masks, resnet50 ({len(prunable)} tensors), compression 10"
    return [
        Figure(name, ours, median(seconds["kthvalue"]), "torch.kthvalue threshold (the limit)",
               target="<= 0.3 s"),
        Figure(name, ours, median(seconds["shrinkbench"]), "ShrinkBench: np.quantile threshold",
               target="<= 0.3 s"),
    ]


def gradient_scores(repeats: int, n_batches: int, batch_size: int = 128) -> Figure:
    """resnet20's ``global_grad`` scores over ``n_batches`` seeded CIFAR-shaped batches."""
    torch.manual_seed(0)
    model = create_model("resnet20", (3, 32, 32), 10)
    prunable = prunable_parameters(model, classifier_name(model))
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(batch_size, 3, 32, 32, generator=g),
                torch.randint(0, 10, (batch_size,), generator=g)) for _ in range(n_batches)]
    scorer = STRATEGIES.get("global_grad")
    seconds = interleaved({
        "mlbench": lambda: scorer(model, prunable, batches, torch.Generator()),
        "bare": lambda: bare_backward(model, batches),
    }, repeats)
    return Figure(
        f"global_grad / layer_grad scores, resnet20, {n_batches} x {batch_size} samples",
        median(seconds["mlbench"]), median(seconds["bare"]), "bare forward + backward",
        target="<= 0.3 s" if n_batches == 1 else "",
    )


def section(quick: bool) -> Section:
    """The suite's section: both benchmarks, fewer repeats in quick mode."""
    repeats = 3 if quick else 7
    before = load1()
    figures = [
        *global_magnitude(repeats),
        gradient_scores(repeats, n_batches=1),
        gradient_scores(repeats, n_batches=4),
    ]
    notes = [
        "Times are medians over interleaved repeats after one warm-up call each.",
        "mlbench's masks keep exactly `keep` weights (ties to the earlier weight); the "
        "baselines' thresholds keep every weight tied with the threshold.",
        "Gradient scores: 1 x 128 is ShrinkBench's amount of data (one training batch); "
        "4 x 128 is mlbench's default `score_batches` at the CIFAR presets' batch size, so "
        "4x the work. The grad strategies' allocation costs what the magnitude one does.",
    ]
    return Section(TITLE, figures, notes, (before, load1()))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures of ``section``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    result = section(args.quick)
    for f in result.figures:
        print(f"{f.name}: mlbench {f.mlbench:.3f} s, {f.baseline_name} {f.baseline:.3f} s, "
              f"ratio {f.ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
