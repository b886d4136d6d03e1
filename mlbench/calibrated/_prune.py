"""Post-training pruning of a transformer's block linears, block after block.

The blocks are pruned in order; block i's calibration inputs come from running the
model, blocks 0..i-1 already pruned (and, for SparseGPT, reconstructed), on the
calibration set, so each block is calibrated on what the pruned network feeds it (the
papers' sequential scheme, at block granularity as their reference code does by
default: the linears of one block are calibrated together on the block's dense inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mlbench.calibrated._capture import capture
from mlbench.calibrated._scores import (
    layer_mask,
    magnitude_scores,
    nm_mask,
    row_mask,
    wanda_scores,
)
from mlbench.calibrated._sparsegpt import sparsegpt
from mlbench.errors import ConfigError

METHODS = ("magnitude", "wanda", "sparsegpt")


@dataclass(frozen=True)
class Target:
    """What to prune: a fraction of every layer (unstructured), or N of every M inputs."""

    sparsity: float = 0.5  # fraction of each block linear's weights pruned (ignored for N:M)
    nm: tuple[int, int] | None = None  # (N, M): N kept of every M consecutive inputs

    def label(self) -> str:
        """``2:4`` or ``50%``."""
        return f"{self.nm[0]}:{self.nm[1]}" if self.nm else f"{self.sparsity:.0%}"


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's ``blocks`` (a ModuleList of transformer blocks).

    Raises:
        ConfigError: a model without them (post-training methods prune transformer blocks).
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise ConfigError(f"post-training pruning prunes the linear layers of transformer "
                          f"blocks; {type(model).__name__} has no `blocks`: use chargpt or vit")
    return blocks


def block_linears(model: nn.Module, index: int) -> dict[str, nn.Linear]:
    """Qualified name -> ``nn.Linear`` of block ``index`` (``blocks.0.attn.q``, ...)."""
    block = transformer_blocks(model)[index]
    return {f"blocks.{index}.{n}": m for n, m in block.named_modules() if isinstance(m, nn.Linear)}


def prunable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """Every linear layer of every block, in order: what the calibrated methods prune."""
    out: dict[str, nn.Linear] = {}
    for i in range(len(transformer_blocks(model))):
        out.update(block_linears(model, i))
    return out


@torch.no_grad()
def prune_post_training(model: nn.Module, method: str, target: Target,
                        calibration: Tensor | None, batch_size: int = 64) -> dict[str, Tensor]:
    """Prune ``model``'s block linears in place with ``method``; return their masks.

    Args:
        model: a transformer with ``blocks``; its pruned weights become exactly zero
            (SparseGPT also updates the kept ones).
        method: ``magnitude`` (|W|, one threshold per layer, as both papers' baseline),
            ``wanda`` (|W| * ||X||, per output row) or ``sparsegpt``.
        target: unstructured sparsity or N:M.
        calibration: model inputs from the training split (None only for magnitude).
        batch_size: calibration samples per forward pass.

    Returns:
        ``"<layer>.weight"`` -> bool mask (True = kept), one per block linear.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown post-training method {method!r}; choose one of: "
                          f"{', '.join(METHODS)}")
    if method != "magnitude" and calibration is None:
        raise ValueError(f"{method} needs calibration inputs")
    masks: dict[str, Tensor] = {}
    for i, block in enumerate(transformer_blocks(model)):
        layers = block_linears(model, i)
        stats = {} if method == "magnitude" else capture(
            model, layers, calibration, hessian=method == "sparsegpt", batch_size=batch_size,
            stop_after=block)
        for name, layer in layers.items():
            weight = layer.weight
            if method == "sparsegpt":
                new, mask = sparsegpt(weight, stats[name].hessian_matrix(), target.sparsity,
                                      target.nm)
                weight.copy_(new)
            else:
                scores = (magnitude_scores(weight) if method == "magnitude"
                          else wanda_scores(weight, stats[name].norms()))
                if target.nm is not None:
                    mask = nm_mask(scores, *target.nm)
                else:
                    mask = (layer_mask if method == "magnitude" else row_mask)(
                        scores, target.sparsity)
                weight.mul_(mask)
            masks[f"{name}.weight"] = mask
    return masks
