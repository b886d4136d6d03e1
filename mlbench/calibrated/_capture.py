"""Calibration data (from the training split only) and the input statistics of linear layers.

Post-training methods see a small calibration set, never a label: Wanda needs each
input feature's L2 norm over all calibration tokens, SparseGPT the Hessian
``2 X X^T``. Both are accumulated by forward hooks on the ``nn.Linear`` layers, in
float64, without keeping the activations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from mlbench.data import Split
from mlbench.data._text import TextSplit
from mlbench.errors import ConfigError


def calibration_inputs(train: Split, samples: int, seq_len: int, seed: int) -> Tensor:
    """``samples`` model inputs drawn with ``seed`` from the training split, and nothing else.

    Text: windows of ``seq_len`` tokens at uniformly drawn offsets of the training text
    (as Wanda and SparseGPT draw random segments of their calibration corpus);
    ``seq_len`` is at most the model's context. Images: ``samples`` distinct training
    images in a seeded random order (``seq_len`` does not apply).

    Raises:
        ConfigError: more samples than the split has, or windows longer than its text.
    """
    g = torch.Generator().manual_seed(seed)
    if isinstance(train, TextSplit):
        tokens = train.tokens
        if seq_len >= len(tokens):
            raise ConfigError(f"--calib-seq-len {seq_len} is longer than the training text "
                              f"({len(tokens)} characters)")
        starts = torch.randint(0, len(tokens) - seq_len, (samples,), generator=g)
        idx = starts.to(tokens.device).unsqueeze(1) + torch.arange(seq_len, device=tokens.device)
        return tokens[idx]
    if samples > len(train):
        raise ConfigError(f"--calib-samples {samples} exceeds the {len(train)} training samples")
    x, _ = next(iter(train.batches(samples, shuffle=True, generator=g)))
    return x


@dataclass
class InputStats:
    """What the calibration inputs of one linear layer were, summed over tokens."""

    features: int
    tokens: int = 0
    sq: Tensor | None = None  # (in,): sum of x_j^2
    xxt: Tensor | None = None  # (in, in): sum of x x^T (only when asked for)
    hessian: bool = field(default=False, repr=False)

    def add(self, x: Tensor) -> None:
        """Accumulate a batch of inputs (..., in)."""
        x = x.detach().reshape(-1, self.features).double()
        sq = (x * x).sum(0)
        self.sq = sq if self.sq is None else self.sq + sq
        if self.hessian:
            xxt = x.T @ x
            self.xxt = xxt if self.xxt is None else self.xxt + xxt
        self.tokens += len(x)

    def norms(self) -> Tensor:
        """``||X_j||_2`` over every calibration token: Wanda's input norms."""
        if self.sq is None:
            raise ValueError("no calibration inputs reached this layer")
        return self.sq.sqrt()

    def hessian_matrix(self) -> Tensor:
        """``2 X X^T / tokens``: SparseGPT's Hessian, averaged over tokens."""
        if self.xxt is None:
            raise ValueError("no Hessian was accumulated for this layer")
        return 2.0 * self.xxt / max(1, self.tokens)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layers of interest have run."""


@contextmanager
def _hooks(layers: Mapping[str, nn.Linear], stats: dict[str, InputStats],
           stop_after: nn.Module | None) -> Iterator[None]:
    handles = []
    for name, layer in layers.items():
        def hook(_m: nn.Module, inp: tuple[Tensor, ...], name: str = name) -> None:
            stats[name].add(inp[0])
        handles.append(layer.register_forward_pre_hook(hook))
    if stop_after is not None:
        def stop(*_: object) -> None:
            raise _Stop
        handles.append(stop_after.register_forward_hook(stop))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def capture(model: nn.Module, layers: Mapping[str, nn.Linear], inputs: Tensor, *,
            hessian: bool = False, batch_size: int = 64,
            stop_after: nn.Module | None = None) -> dict[str, InputStats]:
    """Run ``model`` on ``inputs`` and sum the inputs of each layer in ``layers``.

    Args:
        model: the network (put in eval mode for the pass, then restored).
        layers: name -> linear layer inside ``model``.
        inputs: calibration inputs, (samples, ...).
        hessian: also accumulate ``X X^T`` (SparseGPT).
        batch_size: samples per forward pass.
        stop_after: a module after whose forward the pass ends (the block being pruned:
            nothing later is needed).

    Returns:
        name -> ``InputStats``.
    """
    stats = {n: InputStats(layer.in_features, hessian=hessian) for n, layer in layers.items()}
    was_training = model.training
    model.eval()
    try:
        with _hooks(layers, stats, stop_after):
            for start in range(0, len(inputs), batch_size):
                with suppress(_Stop):
                    model(inputs[start:start + batch_size])
    finally:
        model.train(was_training)
    return stats
