"""Structured removal of attention heads and MLP neurons: a smaller dense network.

Scores are Wanda's idea applied to whole groups, on the layer that reads them: a head's
score is the sum, over its columns j of the output projection, of ``||W_proj[:, j]||_2 *
||X_j||_2``; a neuron's is ``||W_out[:, j]||_2 * ||X_j||_2`` (X: the layer's calibration
inputs). Blocks are pruned in order, each calibrated through the already pruned ones.
Removal slices the rows of q, k, v (or fc) and the columns of proj (or out): the network
computes exactly what the original does with those heads' (neurons') outputs zeroed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlbench.calibrated._capture import capture
from mlbench.calibrated._prune import transformer_blocks
from mlbench.errors import ConfigError

UNITS = ("heads", "neurons")


def _sliced(layer: nn.Linear, rows: Tensor | None = None, cols: Tensor | None = None) -> nn.Linear:
    w = layer.weight.detach()
    b = layer.bias.detach() if layer.bias is not None else None
    if rows is not None:
        w = w[rows]
        b = b[rows] if b is not None else None
    if cols is not None:
        w = w[:, cols]
    new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None,
                    device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new


def remove_heads(attn: nn.Module, keep: Sequence[int]) -> None:
    """Keep only heads ``keep`` of an ``Attention`` module (in place, new smaller layers)."""
    if not keep:
        raise ValueError("at least one head must stay")
    d = attn.head_dim
    idx = torch.cat([torch.arange(h * d, (h + 1) * d) for h in sorted(keep)]).to(
        attn.q.weight.device)
    attn.q, attn.k, attn.v = (_sliced(m, rows=idx) for m in (attn.q, attn.k, attn.v))
    attn.proj = _sliced(attn.proj, cols=idx)
    attn.heads = len(keep)


def remove_neurons(mlp: nn.Module, keep: Sequence[int]) -> None:
    """Keep only hidden neurons ``keep`` of an ``MLP`` module (in place)."""
    if not keep:
        raise ValueError("at least one neuron must stay")
    idx = torch.tensor(sorted(keep), device=mlp.fc.weight.device)
    mlp.fc = _sliced(mlp.fc, rows=idx)
    mlp.out = _sliced(mlp.out, cols=idx)


def head_scores(attn: nn.Module, proj_norms: Tensor) -> Tensor:
    """(heads,): per head, sum over its proj columns of ``||W_proj[:, j]|| * ||X_j||``."""
    col = attn.proj.weight.detach().norm(dim=0) * proj_norms.to(attn.proj.weight.dtype)
    return col.view(attn.heads, attn.head_dim).sum(1)


def neuron_scores(mlp: nn.Module, out_norms: Tensor) -> Tensor:
    """(hidden,): ``||W_out[:, j]|| * ||X_j||``."""
    return mlp.out.weight.detach().norm(dim=0) * out_norms.to(mlp.out.weight.dtype)


def kept_count(total: int, fraction: float) -> int:
    """Units kept when removing ``fraction`` of ``total`` (at least one stays)."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"the fraction of heads or neurons removed must be in [0, 1), "
                          f"got {fraction}")
    return max(1, total - int(round(fraction * total)))


@torch.no_grad()
def prune_units(model: nn.Module, unit: str, fraction: float, calibration: Tensor,
                batch_size: int = 64) -> dict[str, list[int]]:
    """Remove ``fraction`` of the heads (or MLP neurons) of every block, lowest scores first.

    Returns:
        The description that ``rebuild`` needs: ``"blocks.<i>"`` -> kept unit indices.
    """
    if unit not in UNITS:
        raise ConfigError(f"unknown unit {unit!r}; choose one of: {', '.join(UNITS)}")
    kept: dict[str, list[int]] = {}
    for i, block in enumerate(transformer_blocks(model)):
        layer = block.attn.proj if unit == "heads" else block.mlp.out
        stats = capture(model, {"x": layer}, calibration, batch_size=batch_size,
                        stop_after=block)["x"]
        scores = (head_scores(block.attn, stats.norms()) if unit == "heads"
                  else neuron_scores(block.mlp, stats.norms()))
        n = kept_count(len(scores), fraction)
        keep = sorted(torch.sort(scores, descending=True, stable=True).indices[:n].tolist())
        kept[f"blocks.{i}"] = keep
        (remove_heads(block.attn, keep) if unit == "heads" else remove_neurons(block.mlp, keep))
    return kept


def rebuild(model: nn.Module, unit: str, kept: dict[str, list[int]]) -> nn.Module:
    """Shrink a freshly built ``model`` to the architecture ``prune_units`` described
    (weights are then loaded into it)."""
    for i, block in enumerate(transformer_blocks(model)):
        keep = kept[f"blocks.{i}"]
        (remove_heads(block.attn, keep) if unit == "heads" else remove_neurons(block.mlp, keep))
    return model
