"""Masks: which weights are prunable, how scores become masks, and holding masks in training.

A mask is a bool tensor shaped like its parameter (True = kept). Masks are keyed by the
parameter's qualified name (``model.named_parameters()``) and stored as safetensors,
which load without pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mlbench._select import top_mask, top_masks
from mlbench.errors import ConfigError

Masks = dict[str, Tensor]

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
ALLOCATIONS = ("global", "layer")


def prunable_parameters(model: nn.Module, classifier: str | None) -> dict[str, nn.Parameter]:
    """The weight of every Conv*d and Linear layer except the module named ``classifier``.

    Args:
        model: the network.
        classifier: qualified module name to leave dense, or None to prune it too.

    Returns:
        ``{"features.0.weight": param, ...}`` in module order.
    """
    return {
        f"{name}.weight" if name else "weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, _PRUNABLE) and name != classifier
    }


def keep_count(model: nn.Module, prunable: Mapping[str, Tensor], compression: float) -> int:
    """How many prunable weights to keep so that params / params_nz == compression.

    All parameters count (biases, BatchNorm, the classifier), as in the paper; only the
    prunable set can shrink. A target that needs more than the prunable set is a
    ConfigError naming the largest reachable compression.
    """
    total = sum(p.numel() for p in model.parameters())
    prunable_total = sum(p.numel() for p in prunable.values())
    dense = total - prunable_total
    keep = round(total / compression) - dense
    if compression < 1 or keep < 1:
        limit = total / (dense + 1)
        raise ConfigError(
            f"--compression {compression:g} is out of reach for this model: pruning only its "
            f"{prunable_total:,} prunable of {total:,} weights allows 1 to {limit:.1f}"
        )
    return min(keep, prunable_total)


def allocate(scores: Mapping[str, Tensor], keep: int, allocation: str) -> Masks:
    """Turn scores into masks keeping exactly ``keep`` weights (highest scores first).

    ``global`` ranks all weights under one threshold; ``layer`` keeps the same fraction
    of every tensor, rounded per tensor by largest remainder so the total is exact.
    Ties go to the earlier weight (as a stable sort would), so equal scores give the same
    masks. Linear time: the threshold is selected, never sorted for (see ``_select``).
    """
    if allocation == "global":
        return _global(scores, keep)
    if allocation == "layer":
        return _layerwise(scores, keep)
    raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")


def _global(scores: Mapping[str, Tensor], keep: int) -> Masks:
    return dict(zip(scores, top_masks(list(scores.values()), keep), strict=True))


def _layerwise(scores: Mapping[str, Tensor], keep: int) -> Masks:
    sizes = {name: s.numel() for name, s in scores.items()}
    fraction = keep / sum(sizes.values())
    exact = {name: fraction * n for name, n in sizes.items()}
    counts = {name: int(x) for name, x in exact.items()}
    leftover = keep - sum(counts.values())
    by_remainder = sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)
    for name in by_remainder[:leftover]:
        counts[name] += 1
    return {name: top_mask(score, counts[name]) for name, score in scores.items()}


def apply_masks(model: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """Zero the pruned weights of ``model`` in place."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].device))


class MaskHold:
    """Keeps pruned weights exactly zero while an optimizer trains the model.

    Before each step the gradients of pruned weights are zeroed (so momentum and Adam
    moments of pruned weights stay zero); after it the weights are multiplied by their
    masks again (so weight decay or numerics can never revive them). Works with any
    torch optimizer, AMP's GradScaler included. Use as a context manager or call
    ``remove()``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, masks: Masks) -> None:
        params = dict(model.named_parameters())
        self._params = [params[name] for name in masks]
        self._masks = [
            m.to(dtype=params[n].dtype, device=params[n].device) for n, m in masks.items()
        ]
        self._handles = [
            optimizer.register_step_pre_hook(self._mask_grads),
            optimizer.register_step_post_hook(self._mask_weights),
        ]

    @torch.no_grad()
    def _mask_grads(self, *_: Any) -> None:
        pairs = zip(self._params, self._masks, strict=True)
        grads, masks = [], []
        for param, mask in pairs:
            if param.grad is not None:
                grads.append(param.grad)
                masks.append(mask)
        if grads:
            torch._foreach_mul_(grads, masks)

    @torch.no_grad()
    def _mask_weights(self, *_: Any) -> None:
        torch._foreach_mul_(self._params, self._masks)

    def remove(self) -> None:
        """Detach the hooks from the optimizer."""
        for handle in self._handles:
            handle.remove()

    def __enter__(self) -> MaskHold:
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()


def save_masks(masks: Masks, path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write masks as a safetensors file (bool tensors; metadata as strings)."""
    tensors = {name: m.detach().to("cpu", torch.bool).contiguous() for name, m in masks.items()}
    save_file(tensors, str(path), metadata=dict(metadata or {}))


def load_masks(path: str | Path) -> Masks:
    """Read masks written by ``save_masks``; a corrupt file is a ConfigError."""
    try:
        masks = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a bad header
        raise ConfigError(f"{path} is not a readable masks file: {exc}") from None
    bad = [n for n, m in masks.items() if m.dtype != torch.bool]
    if bad:
        raise ConfigError(
            f"{path}: masks must be bool tensors, {bad[0]!r} is {masks[bad[0]].dtype}"
        )
    return masks


def shrink(scores: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    """Scores with every already-pruned weight below all others, so masks only shrink."""
    if not masks:
        return dict(scores)
    out = {}
    for name, s in scores.items():
        s = s.float()
        out[name] = torch.where(masks[name].to(s.device), s, torch.full_like(s, -torch.inf))
    return out

