"""ImageNet-style class folders (``train/`` and ``val/``) read with torchvision's ImageFolder."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets, transforms

from mlbench.config import DataConfig
from mlbench.data._base import DatasetInfo, Splits
from mlbench.data._loader import FileSamples, LoaderSplit
from mlbench.data._normalize import Normalize
from mlbench.data._tensor import holdout
from mlbench.data._torchvision import data_root, one_line
from mlbench.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TRAIN_TRANSFORM = transforms.Compose(
    [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(), transforms.PILToTensor()]
)
EVAL_TRANSFORM = transforms.Compose(
    [transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()]
)


def imagenet_root(cfg: DataConfig) -> Path:
    """``<data_dir>/imagenet``, or ``<data_dir>`` itself if only it holds ``train/``."""
    root = data_root(cfg)
    nested = root / "imagenet"
    if not (nested / "train").is_dir() and (root / "train").is_dir():
        return root
    return nested


def folder_splits(name: str, cfg: DataConfig, device: torch.device) -> Splits:
    """train/val held out of ``train/``, test = ``val/``, all at 3x224x224."""
    root = imagenet_root(cfg)
    elsewhere = data_root(cfg) if root != data_root(cfg) else None
    train = _scan(name, root, "train", elsewhere)
    test = _scan(name, root, "val", None)  # val/ belongs next to train/
    unknown = sorted(set(test.classes) - set(train.classes))
    if unknown:
        raise ConfigError(
            f"{name}: {root / 'val'} has classes that {root / 'train'} lacks: "
            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
        )
    # val/ labels follow train/'s class order
    test_samples = [(p, train.class_to_idx[test.classes[i]]) for p, i in test.samples]
    keep, val = holdout(len(train.samples), cfg.val_fraction)
    normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD, device)

    def split(samples: FileSamples, indices: list[int], augment: bool = False) -> LoaderSplit:
        return LoaderSplit(samples, indices, normalize, cfg.loader_workers, augment and cfg.augment)

    train_files = FileSamples(train.samples, train.loader, TRAIN_TRANSFORM, EVAL_TRANSFORM)
    test_files = FileSamples(test_samples, train.loader, TRAIN_TRANSFORM, EVAL_TRANSFORM)
    return Splits(
        info=DatasetInfo(name, (3, 224, 224), len(train.classes)),
        train=split(train_files, keep.tolist(), augment=True),
        val=split(train_files, val.tolist()),
        test=split(test_files, list(range(len(test_samples)))),
    )


def _scan(name: str, root: Path, part: str, elsewhere: Path | None) -> datasets.ImageFolder:
    """ImageFolder over ``root/part``; ``elsewhere`` is the other place a missing one may be."""
    folder = root / part
    hint = (
        f"put the {part}/ images there, one subfolder per class "
        "(ImageNet cannot be downloaded automatically)"
    )
    if not folder.is_dir():
        also = f" (nor at {elsewhere / part})" if elsewhere else ""
        raise ConfigError(f"{name}: no {part}/ folder at {folder}{also}; {hint}")
    try:
        return datasets.ImageFolder(str(folder))
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"{name}: no images in {folder} ({one_line(err)}); {hint}") from err
