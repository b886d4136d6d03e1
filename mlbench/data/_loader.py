"""Large datasets served from files through a DataLoader: ``LoaderSplit``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from mlbench.data._base import check_batching, count_batches, windows
from mlbench.data._normalize import Normalize

Transform = Callable[[Any], torch.Tensor]  # a loaded image -> (C, H, W) uint8


class FileSamples(Dataset):
    """(path, label) samples; indexed by ``(i, seed)``, the seed None for no augmentation.

    An augmented sample reseeds torch's RNG from its own seed (in a forked RNG state, so
    nothing global changes): its crop and flip depend on that seed only, whatever the
    number of workers or the order they work in.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        load: Callable[[str], Any],
        train_transform: Transform,
        eval_transform: Transform,
    ) -> None:
        self.samples = list(samples)
        self.load = load
        self.train_transform = train_transform
        self.eval_transform = eval_transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int | None]) -> tuple[torch.Tensor, int]:
        index, seed = key
        path, label = self.samples[index]
        image = self.load(path)
        if seed is None:
            return self.eval_transform(image), label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.train_transform(image), label


class LoaderSplit:
    """A split of ``FileSamples`` read in ``workers`` processes, normalized on the device.

    Args:
        samples: the dataset's files and transforms.
        indices: which of its samples form this split.
        normalize: the dataset's normalization.
        workers: DataLoader worker processes (0: read in this process).
        augmentable: whether ``augment=True`` uses the training transform.
    """

    def __init__(
        self,
        samples: FileSamples,
        indices: Sequence[int],
        normalize: Normalize,
        workers: int,
        augmentable: bool,
    ) -> None:
        self.samples = samples
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.normalize = normalize
        self.workers = workers
        self.augmentable = augmentable

    def __len__(self) -> int:
        return len(self.indices)

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches one pass yields."""
        return count_batches(len(self), batch_size, drop_last)

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
        """One pass as normalized ``(x, y)`` batches; see ``Split.batches``.

        The order and one seed per augmented sample are drawn here, when called.
        """
        augment = augment and self.augmentable
        check_batching(batch_size, shuffle or augment, generator)
        order = self.indices
        if shuffle:
            order = order[torch.randperm(len(order), generator=generator)]
        seeds: list[int | None] = [None] * len(order)
        if augment:
            seeds = torch.randint(0, 2**62, (len(order),), generator=generator).tolist()
        device = self.normalize.scale.device
        keys = list(zip(order.tolist(), seeds, strict=True))
        loader = DataLoader(
            self.samples,
            batch_sampler=[keys[w] for w in windows(len(keys), batch_size, drop_last, shard)],
            num_workers=self.workers,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(0),  # keeps the global RNG untouched
        )
        return self._iterate(loader, device)

    def _iterate(
        self, loader: DataLoader, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            yield self.normalize(x), y.to(device, non_blocking=True)
