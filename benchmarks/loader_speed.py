"""Loader speed: mlbench's device-resident ``TensorSplit`` against torchvision's pipeline.

The same CIFAR-shaped data (uint8 images 3x32x32, 10 classes, seeded), the same batch
size (128), shuffled, last partial batch dropped, with the CIFAR training augmentation
(random crop with 4 pixels of padding, horizontal flip) and normalization:

  mlbench      ``TensorSplit.batches``: an index into the tensors held whole, ``CropFlip``
               as one gather over the batch, one multiply-add to normalize.
  torchvision  ``torch.utils.data.DataLoader`` over a dataset that does what
               ``torchvision.datasets.CIFAR10.__getitem__`` does (``Image.fromarray``),
               with ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``,
               ``ToTensor()``, ``Normalize(...)``, at 0 and at 2 worker processes.

A timed block is one pass over the data that only takes the batches (nothing trains),
so the figure is the loaders' own throughput in samples/s.

Run:
    python benchmarks/loader_speed.py [--quick]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
import torch
from _common import Figure, Section, interleaved, load1, median
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mlbench.data._augment import CropFlip
from mlbench.data._normalize import Normalize, channel_stats
from mlbench.data._tensor import TensorSplit

TITLE = "Data loading"
BATCH = 128
WORKERS = (0, 2)  # DataLoader worker processes of the baselines


class ArrayImages(Dataset):
    """Images as one (N, H, W, C) uint8 array, served one PIL image at a time as in
    ``torchvision.datasets.CIFAR10`` (which this benchmark cannot download)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def drain(batches: object) -> None:
    """Take every batch of one pass."""
    for _ in batches:  # type: ignore[attr-defined]
        pass


def loaders(n: int) -> dict[str, Callable[[], None]]:
    """One pass of each loader over the same ``n`` seeded samples."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    mean, std = channel_stats(x)
    split = TensorSplit(x, y, Normalize(mean, std, torch.device("cpu")), CropFlip(pad=4))
    pipeline = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    dataset = ArrayImages(x.permute(0, 2, 3, 1).contiguous().numpy(), y.numpy(), pipeline)

    def torchvision_pass(workers: int) -> Callable[[], None]:
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True,
                            num_workers=workers, generator=torch.Generator().manual_seed(0))
        return lambda: drain(loader)

    gen = torch.Generator().manual_seed(0)
    return {
        "mlbench": lambda: drain(split.batches(BATCH, shuffle=True, augment=True,
                                               generator=gen, drop_last=True)),
        **{f"{w} workers": torchvision_pass(w) for w in WORKERS},
    }


def section(quick: bool) -> Section:
    """The suite's section: 5,000 samples in quick mode, CIFAR-10's 45,000 otherwise."""
    n, repeats = (5_000, 2) if quick else (45_000, 3)
    before = load1()
    seconds = interleaved(loaders(n), repeats)
    samples = n // BATCH * BATCH
    rate = {name: samples / median(s) for name, s in seconds.items()}
    figures = [
        Figure(f"loader, {n:,} CIFAR-shaped samples, batch {BATCH}, crop + flip",
               rate["mlbench"], rate[f"{w} workers"],
               f"DataLoader + torchvision transforms, {w} workers", unit="samples/s")
        for w in WORKERS
    ]
    notes = [
        "Samples/s of one pass that only takes the batches (median over interleaved "
        "repeats after a warm-up pass each); worker start-up counts against the DataLoader "
        "with workers, as it does in every epoch of a real run.",
        "45,000 is CIFAR-10's training split after mlbench's 10% val hold-out.",
    ]
    return Section(TITLE, figures, notes, (before, load1()))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures of ``section``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 samples, 2 repeats")
    args = parser.parse_args(argv)
    for f in section(args.quick).figures:
        print(f"{f.baseline_name}: {f.baseline:,.0f} samples/s; mlbench {f.mlbench:,.0f} "
              f"samples/s; ratio {f.ratio:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
