"""Synthetic CIFAR-10 files in torchvision's on-disk python format, for side-by-side runs.

Writes ``<root>/cifar-10-batches-py/`` exactly as the official archive lays it out
(``data_batch_1`` ... ``data_batch_5``, ``test_batch``, ``batches.meta``: pickled dicts
with ``data`` (N x 3072 uint8, channel-major rows) and ``labels``), 2,000 training and
500 test images by default, seeded. Each class has its own mean colour under the noise,
so a model learns something in one epoch.

torchvision checks every file against the official MD5 sums; these files are not the
official ones. ``write_site`` writes a ``sitecustomize.py`` that, put on PYTHONPATH,
points ``torchvision.datasets.CIFAR10``'s sums at the written files when (and only when)
``torchvision.datasets.cifar`` is imported: the same for every program run with it
(mlbench and ShrinkBench alike), nothing imported early, neither program changed.

Run:
    python benchmarks/make_cifar_files.py ROOT [--train 2000] [--test 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
CHECKSUMS = "checksums.json"

SITE = '''"""Point torchvision's CIFAR-10 checksums at synthetic files (make_cifar_files.py).

Installed for one benchmark process via PYTHONPATH; patches the class after its module
loads, so nothing is imported earlier than the program itself imports it.
"""
import importlib.abc
import importlib.util
import json
import os
import sys

_SUMS = os.environ.get("MLBENCH_CIFAR_CHECKSUMS")


class _AfterCifar(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision.datasets.cifar" or not _SUMS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            with open(_SUMS) as f:
                sums = json.load(f)
            cls = module.CIFAR10
            cls.train_list = [[n, sums[n]] for n, _ in cls.train_list]
            cls.test_list = [[n, sums[n]] for n, _ in cls.test_list]
            cls.meta = {**cls.meta, "md5": sums[cls.meta["filename"]]}

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterCifar())
'''


def images(count: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """``count`` rows of 3072 uint8 (R plane, G plane, B plane) and their labels."""
    labels = rng.integers(0, len(CLASSES), count)
    means = np.linspace(40, 215, len(CLASSES))[labels]  # one mean brightness per class
    pixels = rng.normal(means[:, None], 40.0, (count, 3 * 32 * 32))
    return np.clip(pixels, 0, 255).astype(np.uint8), [int(v) for v in labels]


def write(root: Path, train: int = 2000, test: int = 500, seed: int = 0) -> Path:
    """Write the folder under ``root``; return it. Also writes ``checksums.json`` there."""
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data, labels = images(train, rng)
    parts = {f"data_batch_{i + 1}": (data[i::5], labels[i::5]) for i in range(5)}
    parts["test_batch"] = images(test, rng)
    for name, (x, y) in parts.items():
        entry = {"batch_label": name, "labels": y, "data": x,
                 "filenames": [f"{name}_{i}.png" for i in range(len(y))]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"label_names": list(CLASSES), "num_cases_per_batch": -(-train // 5), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.name != CHECKSUMS}
    (folder / CHECKSUMS).write_text(json.dumps(sums, indent=1))
    return folder


def write_site(folder: Path) -> Path:
    """Write ``sitecustomize.py`` into ``folder`` (put it on PYTHONPATH, and set
    ``MLBENCH_CIFAR_CHECKSUMS`` to the checksums file); return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITE)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    """Write the files; print where."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder to write cifar-10-batches-py into")
    parser.add_argument("--train", type=int, default=2000, help="training images (default 2000)")
    parser.add_argument("--test", type=int, default=500, help="test images (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.train < 5 or args.test < 1:
        print("make_cifar_files.py: --train must be >= 5 and --test >= 1", file=sys.stderr)
        return 2
    folder = write(args.root, args.train, args.test, args.seed)
    print(f"wrote {args.train} train / {args.test} test images to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
