"""The built-in datasets, registered in the order ``mlbench list`` shows them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

from mlbench.config import DataConfig
from mlbench.data._augment import CropFlip
from mlbench.data._base import DATASETS, DatasetInfo, Splits
from mlbench.data._cache import cached_arrays
from mlbench.data._synthetic import make_synthetic
from mlbench.data._tensor import holdout, tensor_splits
from mlbench.data._text import read_corpus, text_splits
from mlbench.data._torchvision import read_cifar, read_mnist, source_files
from mlbench.errors import ConfigError

DIGITS_TEST_FRACTION = 0.2


def _torchvision_datasets() -> ModuleType:
    """torchvision's datasets, imported when one is read: importing torchvision imports its
    detection ops and torch._dynamo (seconds), which digits and synthetic data never need,
    nor a dataset whose decoded arrays are cached (``mlbench.data._cache``)."""
    from torchvision import datasets

    return datasets


@DATASETS.register("digits")
def digits(cfg: DataConfig, device: torch.device) -> Splits:
    """scikit-learn's 8x8 handwritten digits (bundled, no download); test = a fixed 20%."""
    import numpy as np

    table = np.loadtxt(digits_file(), delimiter=",")  # what sklearn's load_digits reads
    x = torch.from_numpy(table[:, :-1].reshape(-1, 1, 8, 8) * (255 / 16)).round().to(torch.uint8)
    y = torch.from_numpy(table[:, -1].astype(int)).long()
    train, test = holdout(len(y), DIGITS_TEST_FRACTION)
    info = DatasetInfo("digits", (1, 8, 8), 10)
    return tensor_splits(info, (x[train], y[train]), (x[test], y[test]), cfg, device)


def digits_file() -> Path:
    """scikit-learn's ``digits.csv.gz``, found without importing scikit-learn (which
    imports pandas and scipy: a second that reading 1,797 rows does not need)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ConfigError("the digits dataset is the copy bundled with scikit-learn: "
                          "pip install scikit-learn")
    return Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"


@DATASETS.register("mnist")
def mnist(cfg: DataConfig, device: torch.device) -> Splits:
    """MNIST handwritten digits, 1x28x28, from ``<data_dir>/MNIST/raw/``."""
    train, test = cached_arrays("mnist", source_files("mnist", cfg), lambda: read_mnist(
        _torchvision_datasets().MNIST, "mnist", cfg))
    info = DatasetInfo("mnist", (1, 28, 28), 10)
    return tensor_splits(info, train, test, cfg, device, stats=((0.1307,), (0.3081,)))


@DATASETS.register("fashion_mnist")
def fashion_mnist(cfg: DataConfig, device: torch.device) -> Splits:
    """Fashion-MNIST clothing images, 1x28x28, from ``<data_dir>/FashionMNIST/raw/``."""
    train, test = cached_arrays("fashion_mnist", source_files("fashion_mnist", cfg),
                                lambda: read_mnist(_torchvision_datasets().FashionMNIST,
                                                   "fashion_mnist", cfg))
    info = DatasetInfo("fashion_mnist", (1, 28, 28), 10)
    return tensor_splits(info, train, test, cfg, device, stats=((0.2860,), (0.3530,)))


@DATASETS.register("cifar10")
def cifar10(cfg: DataConfig, device: torch.device) -> Splits:
    """CIFAR-10, 3x32x32, from ``<data_dir>/cifar-10-batches-py/``; crop+flip augmentation."""
    train, test = cached_arrays("cifar10", source_files("cifar10", cfg), lambda: read_cifar(
        _torchvision_datasets().CIFAR10, "cifar10", "CIFAR-10", cfg))
    info = DatasetInfo("cifar10", (3, 32, 32), 10)
    stats = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    return tensor_splits(info, train, test, cfg, device, stats=stats, augmentation=CropFlip(4))


@DATASETS.register("cifar100")
def cifar100(cfg: DataConfig, device: torch.device) -> Splits:
    """CIFAR-100 (fine labels), 3x32x32, from ``<data_dir>/cifar-100-python/``; crop+flip."""
    train, test = cached_arrays("cifar100", source_files("cifar100", cfg), lambda: read_cifar(
        _torchvision_datasets().CIFAR100, "cifar100", "CIFAR-100", cfg))
    info = DatasetInfo("cifar100", (3, 32, 32), 100)
    stats = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
    return tensor_splits(info, train, test, cfg, device, stats=stats, augmentation=CropFlip(4))


@DATASETS.register("imagenet")
def imagenet(cfg: DataConfig, device: torch.device) -> Splits:
    """ImageNet class folders ``train/`` and ``val/`` in ``<data_dir>/imagenet`` (or
    ``<data_dir>``), read by DataLoader workers; 3x224x224, standard augmentation."""
    from mlbench.data._imagenet import folder_splits

    return folder_splits("imagenet", cfg, device)


@DATASETS.register("synthetic")
def synthetic(cfg: DataConfig, device: torch.device) -> Splits:
    """Random class prototypes plus noise, any shape and class count; the same data always."""
    shape, n = cfg.input_shape(), cfg.synthetic_samples
    x, y = make_synthetic(shape, cfg.synthetic_classes, n + n // 4)
    info = DatasetInfo("synthetic", shape, cfg.synthetic_classes)
    return tensor_splits(info, (x[:n], y[:n]), (x[n:], y[n:]), cfg, device)


@DATASETS.register("shakespeare")
def shakespeare(cfg: DataConfig, device: torch.device) -> Splits:
    """Shakespeare's 42 works, character level, from ``<data_dir>/shakespeare/texts/``;
    split by work (whole files, fixed seed); windows of ``--seq-len`` characters."""
    return _text_dataset("shakespeare", Path(cfg.data_dir) / "shakespeare" / "texts", cfg, device)


@DATASETS.register("text")
def text(cfg: DataConfig, device: torch.device) -> Splits:
    """Any folder of plain-text files (``<data_dir>/*.txt``, one work each), character
    level, split by work like ``shakespeare``: point ``--data-dir`` at your own corpus."""
    return _text_dataset("text", Path(cfg.data_dir), cfg, device)


def _text_dataset(name: str, folder: Path, cfg: DataConfig, device: torch.device) -> Splits:
    corpus = read_corpus(folder, name)
    _, train, val, test = text_splits(corpus, cfg.val_fraction, cfg.seq_len, device,
                                      cfg.eval_chars, cfg.train_chars)
    if min(len(train), len(val), len(test)) == 0:
        raise ConfigError(f"{name}: a split of {folder} is shorter than --seq-len "
                          f"{cfg.seq_len} + 1 characters; use a shorter --seq-len")
    info = DatasetInfo(name, (cfg.seq_len,), len(corpus.vocab), vocab=corpus.vocab)
    return Splits(info=info, train=train, val=val, test=test)
