"""Small datasets held whole on the device: batches by index, augmentation batched."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from mlbench.config import DataConfig
from mlbench.data._augment import Augmentation
from mlbench.data._base import DatasetInfo, Splits, check_batching, count_batches, windows
from mlbench.data._normalize import Normalize, channel_stats
from mlbench.errors import ConfigError

HOLDOUT_SEED = 0  # val (and digits' test split) are the same for every run seed


class TensorSplit:
    """A split whose uint8 images and int64 labels are tensors on the device.

    A batch is an index into them, then ``augmentation`` (if asked for and set), then
    one multiply-add that scales and normalizes.

    Args:
        x: images, uint8, (N, C, H, W), on the device.
        y: labels, int64, (N,), on the device.
        normalize: the dataset's normalization.
        augmentation: the training augmentation, or None where there is none.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        normalize: Normalize,
        augmentation: Augmentation | None = None,
    ) -> None:
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"x must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
        if y.dtype != torch.int64 or y.shape != x.shape[:1]:
            raise ValueError(f"y must be int64 ({len(x)},), got {y.dtype} {tuple(y.shape)}")
        self.x = x.contiguous()
        self.y = y
        self.normalize = normalize
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.y)

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

        The epoch's randomness (order, augmentation parameters) is drawn here, when
        called, and moved to the device once.
        """
        augmentation = self.augmentation if augment else None
        check_batching(batch_size, shuffle or augmentation is not None, generator)
        device = self.y.device
        order = torch.randperm(len(self), generator=generator).to(device) if shuffle else None
        params = augmentation.draw(len(self), generator, device) if augmentation else None
        slices = windows(len(self), batch_size, drop_last, shard)
        return self._iterate(slices, order, augmentation, params)

    def _iterate(
        self,
        slices: Iterator[slice],
        order: torch.Tensor | None,
        augmentation: Augmentation | None,
        params: torch.Tensor | None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for window in slices:
            if order is None:  # a view: no copy before the float conversion
                x, y = self.x[window], self.y[window]
            else:
                idx = order[window]
                x, y = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if augmentation is not None:
                x = augmentation(x, params[window])
            yield self.normalize(x), y


def holdout(n: int, fraction: float, seed: int = HOLDOUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into (kept, held out) sorted index tensors, with a fixed seed.

    ``round(fraction * n)`` indices (at least 1) are held out; at least 1 is kept.
    """
    n_out = max(1, round(fraction * n))
    if n_out >= n:
        raise ConfigError(
            f"--val-fraction {fraction} holds out {n_out} of {n} training samples, "
            "leaving none to train on; use a smaller fraction"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_out:].sort().values, perm[:n_out].sort().values


def tensor_splits(
    info: DatasetInfo,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    cfg: DataConfig,
    device: torch.device,
    *,
    stats: tuple[Sequence[float], Sequence[float]] | None = None,
    augmentation: Augmentation | None = None,
) -> Splits:
    """Hold val out of the (images, labels) training data and put all three splits on device.

    Images are uint8 (N, C, H, W) and labels int64 (N,), on the CPU. ``stats`` is the
    normalization's (mean, std); None computes it from the training split (val left out).
    The training split gets ``augmentation`` when ``cfg.augment`` is on.
    """
    x, y = train
    for part, labels in (("training", y), ("test", test[1])):
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < info.num_classes:
            raise ConfigError(
                f"{info.name}: {part} labels must be in 0..{info.num_classes - 1}, "
                f"got {int(labels.min())}..{int(labels.max())}; are these the official files?"
            )
    keep, val = holdout(len(y), cfg.val_fraction)
    normalize = Normalize(*(stats or channel_stats(x[keep])), device)

    def split(x: torch.Tensor, y: torch.Tensor, aug: Augmentation | None = None) -> TensorSplit:
        return TensorSplit(x.to(device), y.to(device, torch.int64), normalize, aug)

    return Splits(
        info=info,
        train=split(x[keep], y[keep], augmentation if cfg.augment else None),
        val=split(x[val], y[val]),
        test=split(*test),
    )
