"""Read torchvision's MNIST- and CIFAR-family files into uint8 tensors; failures as ConfigError."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mlbench.config import DataConfig
from mlbench.errors import ConfigError

if TYPE_CHECKING:  # importing torchvision costs seconds (torch._dynamo): only when reading
    from torchvision import datasets

Arrays = tuple[torch.Tensor, torch.Tensor]  # images uint8 (N, C, H, W), labels int64 (N,)

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# The files torchvision's CIFAR classes read (``base_folder``, ``train_list``,
# ``test_list`` and ``meta``), known here so that the data cache can key on them without
# importing torchvision; tests/test_data_cache.py holds them equal to torchvision's lists.
CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", (*(f"data_batch_{i}" for i in range(1, 6)),
                                        "test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}
MNIST_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def source_files(name: str, cfg: DataConfig) -> list[Path]:
    """The files dataset ``name`` (an MNIST- or CIFAR-family set) is read from."""
    root = data_root(cfg)
    if name in MNIST_FOLDERS:
        return [root / MNIST_FOLDERS[name] / "raw" / f for f in MNIST_FILES]
    folder, names = CIFAR_FILES[name]
    return [root / folder / f for f in names]


# What opening missing or damaged files raises, in torchvision or in its parsers.
_READ_ERRORS = (
    RuntimeError,
    OSError,
    AssertionError,
    ValueError,
    KeyError,
    EOFError,
    pickle.UnpicklingError,
)


def data_root(cfg: DataConfig) -> Path:
    """``cfg.data_dir`` as an absolute path (what error messages name)."""
    return Path(cfg.data_dir).expanduser().resolve()


def read_mnist(cls: type[datasets.MNIST], name: str, cfg: DataConfig) -> tuple[Arrays, Arrays]:
    """(train, test) arrays of an MNIST-format dataset (``<data_dir>/<cls name>/raw/``)."""
    root = data_root(cfg)
    files = _Files(
        name=name,
        title=cls.__name__,
        folder=root / cls.__name__ / "raw",
        names=MNIST_FILES,
        hint=f"put {', '.join(MNIST_FILES)} (unzipped) there, or pass --download to fetch them",
    )
    out = []
    for train in (True, False):
        d = files.open(cls, root, train, cfg.download)
        out.append((d.data.unsqueeze(1).contiguous(), d.targets.long()))  # (N, 1, 28, 28)
    return out[0], out[1]


def read_cifar(
    cls: type[datasets.CIFAR10], name: str, title: str, cfg: DataConfig
) -> tuple[Arrays, Arrays]:
    """(train, test) arrays of a CIFAR-format dataset (``<data_dir>/<cls.base_folder>/``)."""
    root = data_root(cfg)
    files = _Files(
        name=name,
        title=title,
        folder=root / cls.base_folder,
        names=[f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]],
        hint="put the official python version there, or pass --download to fetch it",
    )
    out = []
    for train in (True, False):
        d = files.open(cls, root, train, cfg.download)
        x = torch.from_numpy(d.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        out.append((x, torch.tensor(d.targets, dtype=torch.int64)))
    return out[0], out[1]


class _Files:
    """Where a torchvision dataset's files belong, for opening it and explaining failures."""

    def __init__(
        self, name: str, title: str, folder: Path, names: Sequence[str], hint: str
    ) -> None:
        self.name, self.title, self.folder, self.names, self.hint = name, title, folder, names, hint

    def open(self, cls: type, root: Path, train: bool, download: bool) -> Any:
        """``cls(root, train=train, download=download)``; failures as one-line ConfigErrors."""
        try:
            return cls(root=str(root), train=train, download=download)
        except _READ_ERRORS as err:
            raise ConfigError(self._explain(err, download)) from err

    def _explain(self, err: BaseException, download: bool) -> str:
        where = f"{self.name}: {self.title}"
        missing = [f for f in self.names if not (self.folder / f).is_file()]
        if download:
            return f"{where} could not be downloaded into {self.folder}: {one_line(err)}"
        if len(missing) == len(self.names):
            return f"{self.name}: no {self.title} files in {self.folder}; {self.hint}"
        if missing:
            return f"{where} files in {self.folder} lack {', '.join(missing)}; {self.hint}"
        return (
            f"{where} files in {self.folder} are corrupt or not the official ones "
            f"({one_line(err)}); replace them, or delete them and pass --download"
        )


def one_line(err: BaseException) -> str:
    """An exception's message on one line, at most 200 characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."
