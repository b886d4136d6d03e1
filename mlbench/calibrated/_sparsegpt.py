"""SparseGPT (Frantar & Alistarh 2023): prune one linear layer and reconstruct its output.

Given calibration inputs X (in x tokens), the layer's reconstruction error
``||W X - W' X||^2`` is a quadratic in the weights with Hessian ``H = 2 X X^T``. The
algorithm (the paper's Algorithm 1) visits the columns left to right; pruning (or
keeping) column j's weights leaves an error that the optimal brain surgeon update
spreads over the columns not yet visited, using row j of the upper Cholesky factor of
``H^-1`` (which holds the inverse Hessians of all the remaining column sets at once).
Updates are applied lazily, a block of ``blocksize`` columns at a time, and the mask is
chosen per block from the scores ``w^2 / [H^-1]_jj^2`` (adaptive mask selection); for
N:M, per group of M columns as the group is reached.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCKSIZE = 128  # the paper's lazy-update and mask-selection block
PERCDAMP = 0.01  # dampening: 1% of the mean diagonal of H, added to the diagonal


def hessian(inputs: Tensor) -> Tensor:
    """``H = 2 X X^T / tokens`` from inputs (tokens, in): the paper's H up to a scale,
    averaged so that its size does not grow with the calibration set (the dampening is
    relative, so the scale changes nothing)."""
    x = inputs.detach().double()
    return 2.0 * x.T @ x / max(1, len(x))


def sparsegpt(
    weight: Tensor,
    hess: Tensor,
    sparsity: float = 0.5,
    nm: tuple[int, int] | None = None,
    blocksize: int = BLOCKSIZE,
    percdamp: float = PERCDAMP,
) -> tuple[Tensor, Tensor]:
    """The pruned and reconstructed weight of one layer, and its mask (True = kept).

    Args:
        weight: (out, in), as ``nn.Linear`` holds it (not changed).
        hess: (in, in), ``hessian`` of the layer's calibration inputs.
        sparsity: fraction pruned in every block of columns (unstructured; ignored with nm).
        nm: (N, M): keep N of every M consecutive input weights of each row.
        blocksize: columns per lazy block (and per mask-selection block).
        percdamp: dampening, as a fraction of the mean of H's diagonal.

    Returns:
        (weight', mask), weight' zero wherever mask is False, in weight's dtype.
    """
    w = weight.detach().double().clone()
    out, cols = w.shape
    if nm is not None and cols % nm[1]:
        raise ValueError(f"a layer with {cols} inputs cannot be split in groups of {nm[1]}")
    h = hess.detach().double().clone()
    dead = torch.diag(h) == 0  # inputs that are always zero: their weights do nothing
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += percdamp * torch.diag(h).mean() * torch.eye(cols, dtype=h.dtype, device=h.device)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    mask = torch.ones_like(w, dtype=torch.bool)
    for start in range(0, cols, blocksize):
        end = min(start + blocksize, cols)
        _block(w, hinv, mask, start, end, sparsity, nm)
    w[~mask] = 0.0
    return w.to(weight.dtype), mask


def _block(w: Tensor, hinv: Tensor, mask: Tensor, start: int, end: int, sparsity: float,
           nm: tuple[int, int] | None) -> None:
    """Prune columns [start, end) of ``w`` in place, then update the columns after them."""
    w1 = w[:, start:end].clone()
    hinv1 = hinv[start:end, start:end]
    d = torch.diag(hinv1)
    err = torch.zeros_like(w1)
    keep = torch.ones_like(w1, dtype=torch.bool)
    if nm is None:  # adaptive mask selection: the block's lowest w^2 / d^2 are pruned
        scores = (w1**2 / d.unsqueeze(0) ** 2).flatten()
        prune = int(round(sparsity * scores.numel()))
        keep.view(-1)[torch.sort(scores, stable=True).indices[:prune]] = False
    for i in range(end - start):
        if nm is not None and i % nm[1] == 0:  # choose this group's N among M, as reached
            n, m = nm
            scores = w1[:, i:i + m] ** 2 / d[i:i + m].unsqueeze(0) ** 2
            low = torch.sort(scores, dim=1, stable=True).indices[:, : m - n]
            keep[:, i:i + m].scatter_(1, low, False)
        col = w1[:, i]
        q = torch.where(keep[:, i], col, torch.zeros_like(col))
        e = (col - q) / hinv1[i, i]  # OBS: the error of this column, scaled
        w1[:, i:] -= e.unsqueeze(1) * hinv1[i, i:].unsqueeze(0)
        w1[:, i] = q
        err[:, i] = e
    w[:, start:end] = w1
    mask[:, start:end] = keep
    w[:, end:] -= err @ hinv[start:end, end:]  # the lazy update of everything after
