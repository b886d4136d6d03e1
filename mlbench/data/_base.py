"""The data contract: what a dataset loader returns, and the registry of loaders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

from mlbench.registry import Registry

if TYPE_CHECKING:
    from mlbench.config import DataConfig


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    Attributes:
        name: the registered dataset name.
        input_shape: (C, H, W) of the tensors the model receives; for text, (T,): a
            window of T int64 tokens.
        num_classes: number of classes; labels are in ``range(num_classes)`` (for text,
            the vocabulary size: a target is the next token).
        vocab: text only: the characters whose indices the tokens are (out of the repr,
            so the image sets' digests stay what they were; ``data_digest`` adds it).
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    vocab: str = field(default="", repr=False)

    @property
    def is_text(self) -> bool:
        """Whether samples are token windows (a language model's) rather than images."""
        return bool(self.vocab)


@runtime_checkable
class Split(Protocol):
    """A fixed set of samples served as normalized batches on the device."""

    def __len__(self) -> int:
        """Number of samples."""
        ...

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches ``batches(batch_size, drop_last=drop_last)`` yields."""
        ...

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        shard: tuple[int, int] = (0, 1),
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the split as ``(x, y)`` batches on the device.

        ``x`` is float32, normalized, shaped (B, C, H, W); ``y`` is int64, shaped (B,).
        Shuffling and augmentation draw their randomness only from ``generator`` (a CPU
        generator), so the same generator state gives identical batches. ``augment``
        applies the dataset's training augmentation where the split has one (the
        training split, when ``DataConfig.augment`` is on) and is a no-op elsewhere.
        ``shard=(rank, world)`` yields only this rank's part of each batch: samples
        ``rank, rank + world, ...`` of it (data-parallel training; see ``windows``).
        """
        ...


@dataclass(frozen=True)
class Splits:
    """A dataset's three splits: train, val (held out from train data) and test."""

    info: DatasetInfo
    train: Split
    val: Split
    test: Split


Loader = Callable[["DataConfig", torch.device], Splits]
"""A dataset loader: ``(cfg, device) -> Splits``."""

DATASETS: Registry[Loader] = Registry("dataset")
"""Dataset name -> loader; fill it with ``@DATASETS.register("name")``."""


def check_batching(batch_size: int, random: bool, generator: torch.Generator | None) -> None:
    """Raise ValueError for a batch size below 1, or randomness wanted without a generator."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if random and generator is None:
        raise ValueError("shuffle/augment need a torch.Generator: randomness is passed in")


def windows(
    n: int, batch_size: int, drop_last: bool, shard: tuple[int, int] = (0, 1)
) -> Iterator[slice]:
    """Index slices of one pass: batch i is ``[i*B, (i+1)*B)``, strided to this rank's part.

    With ``shard=(rank, world)`` the ranks together see exactly the batches of a single
    process (same order, same augmentation draws), each a 1/world part of every batch;
    a rank whose part of a short last batch is empty skips it.
    """
    rank, world = shard
    for i in range(count_batches(n, batch_size, drop_last)):
        window = slice(i * batch_size + rank, min((i + 1) * batch_size, n), world)
        if window.start < window.stop:
            yield window


def count_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Batches of ``batch_size`` in ``n`` samples, the last partial one kept unless drop_last."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return n // batch_size if drop_last else -(-n // batch_size)
