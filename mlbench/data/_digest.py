"""What the data is: a content digest per split, so a base model is reused only for it.

A ``TextSplit`` is hashed over its works' names, window length and tokens; a
``TensorSplit`` is hashed over its images and labels as loaded (uint8 and int64 bytes,
with their shapes); a ``LoaderSplit`` (files read by workers, ImageNet) over each
sample's class folder, file name, size and label, in split order: reading every image
would take longer than an epoch. Digests are remembered per split object.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path

from mlbench.data._base import Split, Splits
from mlbench.data._loader import LoaderSplit
from mlbench.data._tensor import TensorSplit
from mlbench.data._text import TextSplit

CONTEXTS = ("train", "val", "test")
_DIGESTS: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class SplitRecord:
    """One split as an MLflow dataset input: name, source, digest, samples, context."""

    name: str  # e.g. ``cifar10-train``
    source: str  # where it came from (a folder, or the code that makes it)
    digest: str  # content digest (16 hex digits)
    samples: int
    context: str  # train, val or test


def split_digest(split: Split) -> str:
    """A 16-hex-digit sha256 of the split's content (see the module docstring)."""
    if split in _DIGESTS:
        return _DIGESTS[split]
    h = hashlib.sha256()
    if isinstance(split, TensorSplit):
        for t in (split.x, split.y):
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(split, TextSplit):  # the works, the window length and the tokens
        h.update(f"{split.works}{split.seq_len}{tuple(split.tokens.shape)}".encode())
        h.update(split.tokens.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(split, LoaderSplit):
        for i in split.indices.tolist():
            path, label = split.samples.samples[i]
            file = Path(path)
            h.update(f"{file.parent.name}/{file.name}\0{file.stat().st_size}\0{label}\n".encode())
    else:
        raise TypeError(f"cannot digest a {type(split).__name__}")
    _DIGESTS[split] = digest = h.hexdigest()[:16]
    return digest


def split_records(splits: Splits, source: str) -> list[SplitRecord]:
    """The train, val and test splits as dataset inputs of a run."""
    return [
        SplitRecord(f"{splits.info.name}-{context}", source,
                    split_digest(getattr(splits, context)), len(getattr(splits, context)),
                    context)
        for context in CONTEXTS
    ]


def data_digest(splits: Splits) -> str:
    """One digest of all three splits (what the base model's reuse key holds)."""
    blob = "".join(split_digest(getattr(splits, c)) for c in CONTEXTS)
    if splits.info.vocab:  # text: the vocabulary is part of what the data is
        blob += f"vocab={splits.info.vocab!r}"
    return hashlib.sha256(f"{splits.info}{blob}".encode()).hexdigest()[:16]
