"""Linear-time top-k selection: exactly ``k`` kept, ties to the earlier index.

The same masks as a stable descending sort cut at ``k``, without sorting: the k-th
largest score is found by selection (``torch.kthvalue``), and on large inputs that
selection runs only on a narrow band of candidates bracketed from a systematic sample
(Floyd and Rivest's idea), so the full scores are only compared, never reordered.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_SAMPLE = 1 << 16  # scores looked at to bracket the k-th largest one
_DIRECT = 1 << 20  # up to this many scores, one kthvalue over all of them is fast enough
_MARGIN = 4.0  # bracket half-width in units of sqrt(sample size): ~8 binomial std devs


def kth_largest(flat: Tensor, k: int) -> Tensor:
    """The ``k``-th largest value of the 1-D tensor ``flat`` (1 <= k <= numel), exactly.

    Example:
        >>> kth_largest(torch.tensor([3.0, 1.0, 2.0, 2.0]), 2).item()
        2.0
    """
    n = flat.numel()
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    rank = n - k  # 0-based, counted from the smallest
    if n > _DIRECT:
        found = _bracketed(flat, rank)
        if found is not None:
            return found
    return torch.kthvalue(flat, rank + 1).values


def _bracketed(flat: Tensor, rank: int) -> Tensor | None:
    """The value of 0-based ``rank`` found among the scores between two sample quantiles,
    or None when the bracket missed it (then the caller selects over everything)."""
    n = flat.numel()
    sample = flat[:: n // _SAMPLE].sort().values  # a strided sample: no randomness needed
    m = sample.numel()
    centre, margin = rank * m / n, _MARGIN * math.sqrt(m)
    lo = sample[max(0, math.floor(centre - margin))]
    hi = sample[min(m - 1, math.ceil(centre + margin))]
    # One pass over everything keeps the smaller side of the bracket; the band is cut from it.
    if rank >= n // 2:
        tail = flat[flat >= lo]
        below = n - tail.numel()
        band = tail[tail <= hi]
    else:
        tail = flat[flat <= hi]
        band = tail[tail >= lo]
        below = tail.numel() - band.numel()
    if not below <= rank < below + band.numel():
        return None
    return torch.kthvalue(band, rank - below + 1).values


def top_mask(scores: Tensor, k: int) -> Tensor:
    """A bool mask shaped like ``scores`` keeping exactly ``k`` of them, highest first.

    Scores equal to the k-th largest are kept in index order (row-major), so the result
    equals ``argsort(descending=True, stable=True)[:k]`` and equal scores give the same
    masks every time.

    Example:
        >>> top_mask(torch.tensor([1.0, 2.0, 2.0, 2.0]), 2).tolist()
        [False, True, True, False]
    """
    flat = scores.detach().flatten().float()
    n = flat.numel()
    if k <= 0 or k >= n:
        return torch.full(scores.shape, k > 0, dtype=torch.bool, device=scores.device)
    if bool(torch.isnan(flat).any()):  # NaN compares false with everything
        raise ValueError("scores contain NaN; cannot rank them")
    threshold = kth_largest(flat, k)
    mask = flat >= threshold
    # count_nonzero, not sum: summing bools converts them to int64 first (25x slower)
    extra = int(torch.count_nonzero(mask)) - k  # scores tied with the k-th beyond the k
    if extra:  # ties go to the earlier index: drop the last ``extra`` of them
        tied = (flat == threshold).nonzero().squeeze(1)
        mask[tied[tied.numel() - extra :]] = False
    return mask.view(scores.shape)
