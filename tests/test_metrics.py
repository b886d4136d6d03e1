"""Metric definitions checked against answers computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlbench.data._base import windows
from mlbench.engine import evaluate
from mlbench.metrics import param_counts, size_and_ops, topk_correct


class ListSplit:
    """A split over fixed tensors (the Split protocol), batches in order."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return -(-len(self) // batch_size)

    def batches(self, batch_size, *, shuffle=False, augment=False, generator=None,
                drop_last=False, shard=(0, 1)):
        for window in windows(len(self), batch_size, drop_last, shard):
            yield self.x[window], self.y[window]


def test_top5_with_a_partial_last_batch_is_exact():
    # 7 samples, 6 classes; logits rank class c at position rank[i] for sample i.
    # target rank (0 = best): 0, 2, 5, 4, 1, 0, 5  -> top1: 2/7, top5: 5/7
    ranks = [0, 2, 5, 4, 1, 0, 5]
    logits = torch.zeros(7, 6)
    targets = torch.zeros(7, dtype=torch.long)
    for i, r in enumerate(ranks):
        order = torch.arange(6).roll(i)  # class order[j] gets the j-th highest logit
        logits[i, order] = torch.arange(6, 0, -1).float()
        targets[i] = order[r]
    out = evaluate(nn.Identity(), ListSplit(logits, targets), batch_size=3)  # 3 + 3 + 1
    assert out["acc1"] == pytest.approx(2 / 7, abs=0)
    assert out["acc5"] == pytest.approx(5 / 7, abs=0)
    # a mean of per-batch means would give (1/3 + 1/3 + 0) / 3 for top-1
    assert out["acc1"] != pytest.approx((1 / 3 + 1 / 3 + 0) / 3)


def test_topk_is_capped_at_the_number_of_classes():
    logits = torch.tensor([[0.1, 0.5, 0.2], [0.9, 0.0, 0.1]])
    counts = topk_correct(logits, torch.tensor([0, 1]), ks=(1, 5))
    assert counts.tolist() == [0, 2]


def test_compression_of_a_known_small_model():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))  # 15 + 8 = 23 params
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[:, :2] = True  # keep 6 of 12
    counts = param_counts(model, {"0.weight": mask})
    assert counts == {"params": 23, "params_nz": 17, "compression": 23 / 17}


def test_incidental_zeros_are_not_counted_as_pruned():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    with torch.no_grad():
        model[0].weight.zero_()  # zero but unmasked: still a parameter
    assert param_counts(model, {})["params_nz"] == 21


def test_macs_of_a_known_conv_and_their_sparse_count():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    mask = torch.zeros(8, 3, 3, 3, dtype=torch.bool)
    mask[:4] = True  # half of the output filters kept
    metrics, rows = size_and_ops(model, {"0.weight": mask}, (3, 8, 8))
    macs = 8 * 8 * 8 * (3 * 3 * 3)  # outputs x MACs per output = 13,824
    assert metrics["macs"] == macs and metrics["flops"] == 2 * macs
    assert metrics["macs_nz"] == macs / 2 and metrics["flops_nz"] == macs
    assert metrics["speedup"] == 2.0
    assert rows == [
        {"name": "0", "type": "Conv2d", "shape": "8x3x3x3", "params": 216, "nonzero": 108,
         "density": 0.5, "macs": macs, "macs_nz": macs / 2}
    ]


def test_profiling_leaves_the_model_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    model.train()
    size_and_ops(model, {}, (1, 5, 5))
    assert model.training
    assert not any(hasattr(m, "total_ops") for m in model.modules())


def test_conv_linear_speedup_is_shrinkbenchs_resnet20_number():
    """ResNet-20 at 4x with a layer strategy: ShrinkBench reports 4.092 (conv and linear
    MACs only); the whole model, BatchNorm and pooling included, gives 3.873."""
    from mlbench.masks import allocate, keep_count, prunable_parameters
    from mlbench.models import classifier_name, create_model

    torch.manual_seed(0)
    model = create_model("resnet20", (3, 32, 32), 10)
    prunable = prunable_parameters(model, classifier_name(model))
    scores = {n: p.detach().abs() for n, p in prunable.items()}
    masks = allocate(scores, keep_count(model, prunable, 4.0), "layer")
    metrics, rows = size_and_ops(model, masks, (3, 32, 32))
    assert metrics["compression"] == pytest.approx(4.0, abs=1e-3)
    assert metrics["speedup_conv_linear"] == pytest.approx(4.092, abs=1e-3)
    assert metrics["speedup"] == pytest.approx(3.873, abs=1e-3)
    layers = [r for r in rows if r["type"] in ("Conv2d", "Linear")]
    assert metrics["macs_conv_linear"] == sum(r["macs"] for r in layers)
    assert metrics["macs_conv_linear"] < metrics["macs"]
