"""Character-level text corpora: whole works split by a fixed seed, token windows on device.

A corpus is a folder of plain-text files, one work each. The split is by work (whole
files), drawn with ``HOLDOUT_SEED``: ``TEST_FRACTION`` of the works are the test split,
``val_fraction`` of the rest are val, the remainder is train, so no val or test text is
ever seen in training. The vocabulary is the sorted set of characters of all the files
(a token is an index into it); it is part of the dataset's identity (``DatasetInfo.vocab``).

A sample is a window of ``seq_len`` tokens and its targets, the same window shifted by
one character: windows tile each split's text (its works concatenated in file-name
order) without overlap, so an evaluation reads every character of the split once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mlbench.data._base import check_batching, count_batches, windows
from mlbench.data._tensor import HOLDOUT_SEED
from mlbench.errors import ConfigError

TEST_FRACTION = 0.1  # of the works; at least one
MAX_VOCAB = 65536  # tokens are stored as int64 but a vocab beyond this is not characters


@dataclass(frozen=True)
class Corpus:
    """The files of a corpus, their text and its vocabulary."""

    folder: Path
    names: tuple[str, ...]  # file names, sorted
    texts: tuple[str, ...]  # one per file
    vocab: str  # sorted distinct characters of all texts


@dataclass(frozen=True)
class WorkSplit:
    """Which works (file names) went to which split, and the seed that drew it."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    seed: int = HOLDOUT_SEED


class TextSplit:
    """A split's text as one int64 token tensor on the device, served as token windows.

    Args:
        tokens: the split's characters as vocabulary indices, int64, (N,), on the device.
        seq_len: characters per window (T).
        works: the file names whose text this is, in order.
    """

    def __init__(self, tokens: torch.Tensor, seq_len: int, works: Sequence[str]) -> None:
        if tokens.dtype != torch.int64 or tokens.dim() != 1:
            raise ValueError(f"tokens must be int64 (N,), got {tokens.dtype} {tuple(tokens.shape)}")
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.tokens = tokens.contiguous()
        self.seq_len = seq_len
        self.works = tuple(works)
        self._offsets = torch.arange(seq_len, device=tokens.device)

    def __len__(self) -> int:
        """Number of windows: each needs ``seq_len`` inputs and one more target."""
        return max(0, (len(self.tokens) - 1) // self.seq_len)

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
        """One pass as ``(x, y)`` batches of token windows, both int64 (B, T).

        ``y[b, t]`` is the character after ``x[b, t]``. Text has no augmentation
        (``augment`` is accepted and does nothing); shuffling draws only from ``generator``.
        """
        check_batching(batch_size, shuffle, generator)
        device = self.tokens.device
        order = torch.randperm(len(self), generator=generator).to(device) if shuffle else None
        index = torch.arange(len(self), device=device) if order is None else order
        for window in windows(len(self), batch_size, drop_last, shard):
            idx = index[window]
            starts = idx.mul(self.seq_len).unsqueeze(1) + self._offsets  # (B, T)
            yield self.tokens[starts], self.tokens[starts + 1]


def read_corpus(folder: Path, what: str) -> Corpus:
    """The ``*.txt`` files of ``folder`` (at least three: train, val and test need one each).

    Raises:
        ConfigError: no such folder, fewer than three files, or a file that is not UTF-8.
    """
    files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    if len(files) < 3:
        raise ConfigError(
            f"{what}: expected a folder of at least 3 plain-text files (*.txt, one work each) "
            f"at {folder}, found {len(files)}; point --data-dir at it"
        )
    texts = []
    for file in files:
        try:
            texts.append(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what}: {file} is not UTF-8 text ({exc.reason})") from None
    vocab = "".join(sorted(set().union(*texts)))
    if len(vocab) > MAX_VOCAB:
        raise ConfigError(f"{what}: {len(vocab)} distinct characters, at most {MAX_VOCAB}")
    return Corpus(folder, tuple(f.name for f in files), tuple(texts), vocab)


def split_works(names: Sequence[str], val_fraction: float, seed: int = HOLDOUT_SEED) -> WorkSplit:
    """Draw test works, then val works from the rest, with a fixed seed; names sorted within.

    Example:
        >>> s = split_works([f"w{i}.txt" for i in range(10)], 0.2)
        >>> len(s.train), len(s.val), len(s.test)
        (7, 2, 1)
    """
    n = len(names)
    n_test = max(1, round(TEST_FRACTION * n))
    n_val = max(1, round(val_fraction * (n - n_test)))
    if n_test + n_val >= n:
        raise ConfigError(
            f"--val-fraction {val_fraction} with {n} works leaves none to train on; "
            "use a smaller fraction or more files"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    pick = [names[i] for i in perm]

    def part(chosen: list[str]) -> tuple[str, ...]:
        return tuple(sorted(chosen))

    return WorkSplit(part(pick[n_test + n_val:]), part(pick[n_test:n_test + n_val]),
                     part(pick[:n_test]), seed)


def encode(text: str, vocab: str) -> torch.Tensor:
    """``text`` as int64 indices into ``vocab`` (every character must be in it)."""
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32)  # sorted
    return torch.from_numpy(np.searchsorted(table, codes).astype(np.int64))


def decode(tokens: torch.Tensor, vocab: str) -> str:
    """The inverse of ``encode``."""
    return "".join(vocab[i] for i in tokens.tolist())


def text_splits(
    corpus: Corpus, val_fraction: float, seq_len: int, device: torch.device,
    eval_chars: int = 0, train_chars: int = 0,
) -> tuple[WorkSplit, TextSplit, TextSplit, TextSplit]:
    """The corpus split by work into train, val and test ``TextSplit``s on ``device``.

    ``eval_chars`` > 0 keeps only the first ``eval_chars`` characters of val's and test's
    text (their works concatenated in name order): a shorter, fixed evaluation;
    ``train_chars`` > 0 does the same for train (a smaller training budget).
    """
    works = split_works(corpus.names, val_fraction)
    by_name = dict(zip(corpus.names, corpus.texts, strict=True))

    def split(names: tuple[str, ...], limit: int = 0) -> TextSplit:
        text = "".join(by_name[n] for n in names)
        tokens = encode(text[:limit] if limit else text, corpus.vocab)
        return TextSplit(tokens.to(device), seq_len, names)

    return (works, split(works.train, train_chars), split(works.val, eval_chars),
            split(works.test, eval_chars))
