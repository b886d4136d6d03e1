"""Decoded image arrays of file-backed datasets, kept so later runs need not decode again.

Reading MNIST or CIFAR goes through torchvision's dataset classes (which check the
official files, CIFAR's MD5s included), and importing torchvision imports its detection
ops and ``torch._dynamo``: seconds of every run, more than a short fine-tuning epoch.
The first read of a dataset's files therefore saves what torchvision decoded, as uint8
and int64 tensors in one safetensors file (no pickle), under ``$MLBENCH_DATA_CACHE``
(else ``~/.cache/mlbench/data``; ``MLBENCH_DATA_CACHE=off`` turns the cache off). Later
reads of the same files load that file and never import torchvision.

A cached copy belongs to its source files as they were: the file name holds a digest of
each source file's resolved path, size and modification time, so a replaced, touched or
moved file is read by torchvision again. A cache that cannot be written (a read-only
home) or read (a damaged file, which is then removed) is passed over: the data always
comes from the files, through torchvision, when the cache has nothing sound.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

Arrays = tuple[torch.Tensor, torch.Tensor]  # images uint8 (N, C, H, W), labels int64 (N,)
FORMAT = "1"  # bump when what is stored, or how, changes
_KEYS = ("train_x", "train_y", "test_x", "test_y")


def cache_root() -> Path | None:
    """``$MLBENCH_DATA_CACHE``, else ``~/.cache/mlbench/data``; None when it is ``off``."""
    given = os.environ.get("MLBENCH_DATA_CACHE")
    if given is not None and given.strip().lower() in ("off", "0", "false", "no", ""):
        return None
    return Path(given).expanduser() if given else Path.home() / ".cache" / "mlbench" / "data"


def source_key(name: str, files: Sequence[Path]) -> str | None:
    """A digest of the files' resolved paths, sizes and modification times; None where
    one is missing (then torchvision reads, and explains what is missing)."""
    h = hashlib.sha256(f"{FORMAT}\0{name}".encode())
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            return None
        h.update(f"\0{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def cached_arrays(
    name: str, files: Sequence[Path], read: Callable[[], tuple[Arrays, Arrays]]
) -> tuple[Arrays, Arrays]:
    """(train, test) arrays of dataset ``name`` read from ``files``: from the cache where
    it holds them for these files as they are now, else ``read()`` (then kept)."""
    root = cache_root()
    key = source_key(name, files) if root is not None else None
    path = root / f"{name}-{key}.safetensors" if root is not None and key else None
    if path is not None and path.is_file():
        found = _load(path)
        if found is not None:
            return found
    train, test = read()
    key = source_key(name, files) if root is not None else None  # --download made them
    if root is not None and key is not None:
        _save(root / f"{name}-{key}.safetensors", train, test)
    return train, test


def _load(path: Path) -> tuple[Arrays, Arrays] | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        t = load_file(path)
        found = tuple(t[k] for k in _KEYS)
    except (OSError, SafetensorError, KeyError, ValueError):
        with contextlib.suppress(OSError):
            path.unlink()  # damaged: read the files again, and keep a sound copy
        return None
    x, y, tx, ty = found
    if x.dtype != torch.uint8 or tx.dtype != torch.uint8 or len(x) != len(y) or len(tx) != len(ty):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return (x, y), (tx, ty)


def _save(path: Path, train: Arrays, test: Arrays) -> None:
    """Write atomically (a whole file or none); a cache that cannot be written is skipped."""
    from safetensors.torch import save_file

    tensors = dict(zip(_KEYS, (*train, *test), strict=True))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file({k: v.contiguous() for k, v in tensors.items()}, tmp,
                      metadata={"format": FORMAT})
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError:
        return
