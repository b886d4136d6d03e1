"""Linear-time top-k: the very masks a stable descending sort gives, on every path."""

from __future__ import annotations

import pytest
import torch

from mlbench._select import _DIRECT, _bracketed, kth_largest, top_mask, top_masks


def sorted_mask(flat: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: a stable descending sort cut at k (ties to the earlier index)."""
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[torch.argsort(flat, descending=True, stable=True)[:k]] = True
    return mask


def scores(kind: str, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if kind == "continuous":
        return torch.rand(n, generator=g)
    if kind == "ties":  # few distinct values: the k-th largest is tied many times over
        return torch.randint(0, 7, (n,), generator=g).float()
    # a strided sample that sees only the spikes: the bracket misses, selection falls back
    flat = torch.rand(n, generator=g)
    flat[:: max(1, n // (1 << 16))] = 1000.0
    return flat


@pytest.mark.parametrize("kind", ["continuous", "ties", "adversarial"])
@pytest.mark.parametrize("n", [10, 5000, _DIRECT + 12345])
@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.5, 0.97, 1.0])
def test_top_mask_equals_a_stable_sort(kind, n, fraction):
    flat = scores(kind, n)
    k = round(fraction * n)
    mask = top_mask(flat, k)
    assert int(mask.sum()) == k
    assert torch.equal(mask, sorted_mask(flat, k))


@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.9])
def test_masks_over_several_tensors_equal_a_stable_sort_of_their_concatenation(kind, fraction):
    flat = scores(kind, 2 * _DIRECT + 777)
    cuts = [0, 5, 300_000, _DIRECT, 2 * _DIRECT + 777]  # uneven parts, one tiny
    parts = [flat[a:b].view(-1, 1) for a, b in zip(cuts, cuts[1:], strict=False)]
    k = round(fraction * flat.numel())
    masks = top_masks(parts, k)
    assert [m.shape for m in masks] == [p.shape for p in parts]
    assert torch.equal(torch.cat([m.flatten() for m in masks]), sorted_mask(flat, k))


def test_large_inputs_are_selected_within_the_sampled_band():
    flat = scores("continuous", 4 * _DIRECT)
    parts = list(flat.split(_DIRECT // 3))
    rank = flat.numel() - 1000
    found = _bracketed(parts, flat.numel(), rank)
    assert found is not None and found == flat.sort().values[rank]
    assert _bracketed([scores("adversarial", 4 * _DIRECT)], flat.numel(), rank // 2) is None


def test_top_mask_keeps_the_shape_and_kth_largest_checks_k():
    assert top_mask(torch.ones(2, 3), 4).tolist() == [[True, True, True], [True, False, False]]
    assert kth_largest([torch.tensor([5.0, 1.0]), torch.tensor([3.0])], 1) == 5.0
    with pytest.raises(ValueError, match="k must be in 1..3"):
        kth_largest([torch.tensor([5.0, 1.0, 3.0])], 0)


def test_nan_scores_are_an_error_not_a_short_mask():
    with pytest.raises(ValueError, match="NaN"):
        top_mask(torch.tensor([1.0, float("nan"), 3.0, 0.5]), 2)
