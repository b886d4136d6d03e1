"""Text datasets: split by whole works, token windows, digest with the vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mlbench.config import DataConfig
from mlbench.data import Split, data_digest, load_dataset
from mlbench.data._text import decode, encode, split_works
from mlbench.errors import ConfigError
from tests.conftest import SHARED_DATA

SHARED = SHARED_DATA
CPU = torch.device("cpu")


def write_corpus(root: Path, n: int = 12) -> dict[str, str]:
    """``n`` small works, each with a character only it has (its letter), so a window's
    characters say which work it came from."""
    root.mkdir(parents=True, exist_ok=True)
    works = {}
    for i in range(n):
        mark = chr(ord("A") + i)
        works[f"w{i:02d}.txt"] = text = (f"{mark} the quick brown fox {i}\n" * 20)
        (root / f"w{i:02d}.txt").write_text(text)
    return works


def load(folder: Path, **kw) -> object:
    return load_dataset(DataConfig(dataset="text", data_dir=str(folder), **kw), CPU)


def test_split_is_by_whole_work_with_no_text_shared(tmp_path):
    works = write_corpus(tmp_path)
    splits = load(tmp_path, seq_len=8, val_fraction=0.2)
    parts = {c: set(getattr(splits, c).works) for c in ("train", "val", "test")}
    assert parts["train"] | parts["val"] | parts["test"] == set(works)
    assert not parts["train"] & parts["test"] and not parts["train"] & parts["val"]
    assert not parts["val"] & parts["test"]
    marks = {c: {works[w][0] for w in parts[c]} for c in parts}
    x, y = next(splits.train.batches(len(splits.train)))
    seen = set(decode(torch.cat([x.flatten(), y.flatten()]), splits.info.vocab))
    assert seen & (marks["val"] | marks["test"]) == set()  # no val/test character in train
    # the same split every load (a fixed seed), whatever the run seed
    assert load(tmp_path, seq_len=8, val_fraction=0.2).test.works == splits.test.works


def test_windows_are_next_character_targets_tiling_the_split(tmp_path):
    write_corpus(tmp_path)
    splits = load(tmp_path, seq_len=7)
    test = splits.test
    assert isinstance(test, Split) and splits.info.input_shape == (7,)
    x, y = (torch.cat(t) for t in zip(*test.batches(5), strict=True))
    assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (len(test), 7)
    assert torch.equal(x.flatten(), test.tokens[: len(test) * 7])
    assert torch.equal(y.flatten(), test.tokens[1 : len(test) * 7 + 1])
    assert len(test) == (len(test.tokens) - 1) // 7
    g = [torch.Generator().manual_seed(3) for _ in range(2)]
    a, b = (torch.cat([xb for xb, _ in splits.train.batches(4, shuffle=True, generator=gi)])
            for gi in g)
    assert torch.equal(a, b) and not torch.equal(a, x[: len(a)])


def test_vocab_is_the_sorted_characters_and_in_the_digest(tmp_path):
    works = write_corpus(tmp_path)
    splits = load(tmp_path, seq_len=8)
    assert splits.info.vocab == "".join(sorted(set("".join(works.values()))))
    assert splits.info.num_classes == len(splits.info.vocab)
    text = works["w00.txt"]
    assert decode(encode(text, splits.info.vocab), splits.info.vocab) == text
    digest = data_digest(splits)
    assert data_digest(load(tmp_path, seq_len=8)) == digest
    assert data_digest(load(tmp_path, seq_len=9)) != digest
    (tmp_path / "w00.txt").write_text(text.replace("fox", "f\u00f6x"))  # a new character
    assert data_digest(load(tmp_path, seq_len=8)) != digest


def test_bad_folders_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="at least 3 plain-text files"):
        load(tmp_path)
    write_corpus(tmp_path, 3)
    (tmp_path / "w00.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(tmp_path)
    with pytest.raises(ConfigError, match="leaves none to train on"):
        split_works(["a", "b", "c", "d"], 0.9)


@pytest.mark.skipif(not (SHARED / "shakespeare").is_dir(), reason="needs ../shared/data")
def test_shakespeare_is_42_works_84_characters():
    splits = load_dataset(DataConfig(dataset="shakespeare", data_dir=str(SHARED)), CPU)
    works = [splits.train.works, splits.val.works, splits.test.works]
    assert sum(len(w) for w in works) == 42 and [len(w) for w in works] == [34, 4, 4]
    assert splits.info.num_classes == 84
    total = sum(len(getattr(splits, c).tokens) for c in ("train", "val", "test"))
    assert total == 5_057_198  # ASCII: one character per byte, every byte served


def test_eval_chars_shortens_val_and_test_only(tmp_path):
    write_corpus(tmp_path)
    full, short = load(tmp_path, seq_len=8), load(tmp_path, seq_len=8, eval_chars=50)
    assert torch.equal(short.train.tokens, full.train.tokens)
    assert torch.equal(load(tmp_path, seq_len=8, train_chars=60).train.tokens,
                       full.train.tokens[:60])
    for c in ("val", "test"):
        assert torch.equal(getattr(short, c).tokens, getattr(full, c).tokens[:50])
    assert data_digest(short) != data_digest(full)
