"""Datasets as train / val / test splits that serve normalized batches on the device.

Small datasets live whole on the device (``TensorSplit``); ImageNet is read from files by
DataLoader workers (``LoaderSplit``). Both satisfy ``Split``. Val is always held out of
the training data with a fixed seed, so every run seed tunes on the same val set.

Example:
    >>> import torch
    >>> from mlbench.config import DataConfig
    >>> splits = load_dataset(DataConfig(dataset="digits"), torch.device("cpu"))
    >>> x, y = next(splits.train.batches(32, shuffle=True, generator=torch.Generator()))
    >>> tuple(x.shape), y.dtype
    ((32, 1, 8, 8), torch.int64)
"""

from __future__ import annotations

from pathlib import Path

import torch

from mlbench.config import DataConfig
from mlbench.data import _builtin  # noqa: F401  (registers the built-in datasets)
from mlbench.data._base import DATASETS, DatasetInfo, Split, Splits
from mlbench.data._digest import SplitRecord, data_digest, split_digest, split_records

__all__ = ["DATASETS", "DatasetInfo", "Split", "SplitRecord", "Splits", "data_digest",
           "data_source", "dataset_names", "load_dataset", "split_digest", "split_records"]


def load_dataset(cfg: DataConfig, device: torch.device | str) -> Splits:
    """Load ``cfg.dataset``'s splits onto ``device``.

    Raises:
        ConfigError: an unknown dataset name (the message lists the known ones), or
            missing / corrupt files (the message says where they belong).
    """
    return DATASETS.get(cfg.dataset)(cfg, torch.device(device))


def data_source(cfg: DataConfig) -> str:
    """Where a dataset comes from, for its MLflow dataset inputs."""
    if cfg.dataset == "digits":
        return "sklearn.datasets.load_digits"
    if cfg.dataset == "synthetic":
        return (f"mlbench synthetic {cfg.synthetic_shape} x {cfg.synthetic_classes} classes, "
                f"{cfg.synthetic_samples} samples")
    return str(Path(cfg.data_dir).resolve())


def dataset_names() -> list[str]:
    """Registered dataset names, in registration order (``digits`` first: the default)."""
    return DATASETS.names()
