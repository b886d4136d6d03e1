"""Linear-time top-k selection: exactly ``k`` kept, ties to the earlier index.

The same masks as a stable descending sort of all scores cut at ``k``, without sorting:
the k-th largest score is found by selection (``torch.kthvalue``), and on large inputs
that selection runs only on a narrow band of candidates bracketed from a strided sample
(Floyd and Rivest's idea), so the scores are only compared, never reordered. Scores
come as a list of tensors (one per layer) and are never concatenated: a model's worth
of float32 in one block is served by mmap and faulted in page by page on every call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

_SAMPLE = 1 << 16  # scores looked at to bracket the k-th largest one
_DIRECT = 1 << 20  # up to this many scores, one kthvalue over all of them is fast enough
_MARGIN = 4.0  # bracket half-width in units of sqrt(sample size): ~8 binomial std devs


def kth_largest(parts: Sequence[Tensor], k: int) -> Tensor:
    """The ``k``-th largest value among all elements of the 1-D tensors ``parts``, exactly.

    Example:
        >>> kth_largest([torch.tensor([3.0, 1.0]), torch.tensor([2.0, 2.0])], 2).item()
        2.0
    """
    n = sum(p.numel() for p in parts)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    rank = n - k  # 0-based, counted from the smallest
    if n > _DIRECT:
        found = _bracketed(parts, n, rank)
        if found is not None:
            return found
    flat = parts[0] if len(parts) == 1 else torch.cat(list(parts))
    return torch.kthvalue(flat, rank + 1).values


def _bracketed(parts: Sequence[Tensor], n: int, rank: int) -> Tensor | None:
    """The value of 0-based ``rank`` found among the scores between two sample quantiles,
    or None when the bracket missed it (then the caller selects over everything)."""
    step = max(1, n // _SAMPLE)
    sample = torch.cat([p[::step] for p in parts]).sort().values  # no randomness needed
    m = sample.numel()
    centre, margin = rank * m / n, _MARGIN * math.sqrt(m)
    lo = sample[max(0, math.floor(centre - margin))]
    hi = sample[min(m - 1, math.ceil(centre + margin))]
    # One pass over everything keeps the smaller side of the bracket; the band is cut from it.
    if rank >= n // 2:
        tail = torch.cat([p[p >= lo] for p in parts])
        below = n - tail.numel()
        band = tail[tail <= hi]
    else:
        tail = torch.cat([p[p <= hi] for p in parts])
        band = tail[tail >= lo]
        below = tail.numel() - band.numel()
    if not below <= rank < below + band.numel():
        return None
    return torch.kthvalue(band, rank - below + 1).values


def top_masks(scores: Sequence[Tensor], k: int) -> list[Tensor]:
    """Bool masks shaped like ``scores`` keeping exactly ``k`` scores in all, highest first.

    Scores equal to the k-th largest are kept in index order (tensor by tensor, each
    row-major), so the masks equal a stable descending sort of the concatenated scores
    cut at ``k``: equal scores give the same masks every time. NaN is a ValueError.

    Example:
        >>> [m.tolist() for m in top_masks([torch.tensor([1.0, 2.0]), torch.ones(2) * 2], 2)]
        [[False, True], [True, False]]
    """
    flats = [s.detach().flatten().float() for s in scores]
    n = sum(f.numel() for f in flats)
    if k <= 0 or k >= n:
        return [torch.full(s.shape, k > 0, dtype=torch.bool, device=s.device) for s in scores]
    if _has_nan(flats):  # NaN compares false with everything: no threshold ranks it
        raise ValueError("scores contain NaN; cannot rank them")
    threshold = kth_largest(flats, k)
    masks = [f >= threshold for f in flats]
    # count_nonzero, not sum: summing bools converts them to int64 first (25x slower)
    extra = sum(int(torch.count_nonzero(m)) for m in masks) - k  # ties beyond the k
    for f, mask in zip(reversed(flats), reversed(masks), strict=True):
        if extra == 0:
            break
        tied = (f == threshold).nonzero().squeeze(1)  # ties go to the earlier index:
        drop = tied[max(0, tied.numel() - extra) :]  # drop the last ``extra`` of them
        mask[drop] = False
        extra -= drop.numel()
    return [m.view(s.shape) for m, s in zip(masks, scores, strict=True)]


def _has_nan(flats: Sequence[Tensor]) -> bool:
    """Whether any score is NaN: a sum per tensor (no temporaries) finds the suspects."""
    sums = torch.stack([f.sum() for f in flats])
    suspects = torch.isnan(sums).nonzero().flatten().tolist()  # NaN, or +inf with -inf
    return any(bool(torch.isnan(flats[i]).any()) for i in suspects)


def top_mask(scores: Tensor, k: int) -> Tensor:
    """``top_masks`` for one tensor.

    Example:
        >>> top_mask(torch.tensor([1.0, 2.0, 2.0, 2.0]), 2).tolist()
        [False, True, True, False]
    """
    return top_masks([scores], k)[0]
