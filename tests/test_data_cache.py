"""The decoded-array cache of file-backed datasets: later runs skip torchvision, and
nothing but the files as they are now is ever served."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from mlbench.config import DataConfig
from mlbench.data._torchvision import CIFAR_FILES, MNIST_FILES, MNIST_FOLDERS
from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                                reason=f"no MNIST under {SHARED_DATA}")

# Loads MNIST in a fresh process; prints whether torchvision was imported and a digest.
LOAD = """
import sys, torch
from mlbench.config import DataConfig
from mlbench.data import load_dataset, data_digest
splits = load_dataset(DataConfig(dataset='mnist', data_dir=sys.argv[1]), torch.device('cpu'))
print('torchvision' in sys.modules, data_digest(splits))
"""


def test_the_cache_keys_on_the_files_torchvision_reads():
    for cls, name in ((datasets.CIFAR10, "cifar10"), (datasets.CIFAR100, "cifar100")):
        folder, files = CIFAR_FILES[name]
        assert folder == cls.base_folder
        assert set(files) == {f for f, _ in cls.train_list + cls.test_list} | {
            cls.meta["filename"]}
    assert set(MNIST_FILES) == {f for url, _ in datasets.MNIST.resources
                                for f in [url.rsplit("/", 1)[-1].removesuffix(".gz")]}
    folders = {"mnist": datasets.MNIST.__name__, "fashion_mnist": datasets.FashionMNIST.__name__}
    assert folders == MNIST_FOLDERS


def _load(data_dir: Path, cache: str) -> tuple[bool, str]:
    env = {**os.environ, "MLBENCH_DATA_CACHE": cache, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", LOAD, str(data_dir)], env=env, check=True,
                         capture_output=True, text=True, cwd=REPO).stdout.split()
    return out[0] == "True", out[1]


@pytest.mark.slow
def test_a_second_read_needs_no_torchvision_and_a_changed_file_is_read_again(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SHARED_DATA / "MNIST" / "raw", data / "MNIST" / "raw")
    cache = tmp_path / "cache"
    imported, digest = _load(data, str(cache))
    assert imported  # the first read: torchvision's MNIST class
    (kept,) = cache.glob("mnist-*.safetensors")
    assert _load(data, str(cache)) == (False, digest)  # the same data, no torchvision

    kept.write_bytes(kept.read_bytes()[:1000])  # a damaged copy is passed over, replaced
    assert _load(data, str(cache)) == (True, digest)
    assert kept.is_file() and kept.stat().st_size > 1000

    labels = data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    blob = bytearray(labels.read_bytes())
    blob[-1] = (blob[-1] + 1) % 10  # one test label changed: the files are read again
    labels.write_bytes(bytes(blob))
    imported, changed = _load(data, str(cache))
    assert imported and changed != digest
    assert len(list(cache.glob("mnist-*.safetensors"))) == 2

    assert _load(data, "off")[0]  # no cache: torchvision reads, and nothing is kept
    assert not (REPO / "off").exists() and len(list(cache.iterdir())) == 2


def test_arrays_from_the_cache_equal_torchvisions(tmp_path, monkeypatch):
    from mlbench.data._builtin import mnist

    monkeypatch.setenv("MLBENCH_DATA_CACHE", str(tmp_path))
    cfg = DataConfig(dataset="mnist", data_dir=str(SHARED_DATA))
    first = mnist(cfg, torch.device("cpu"))
    assert len(list(tmp_path.glob("mnist-*.safetensors"))) == 1
    second = mnist(cfg, torch.device("cpu"))
    for split in ("train", "val", "test"):
        a, b = getattr(first, split), getattr(second, split)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
