"""mlbench.data: real torchvision loaders over small files written in the true formats."""

from __future__ import annotations

import hashlib
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from mlbench.config import TEXT_DATASETS, DataConfig
from mlbench.data import DATASETS, DatasetInfo, Split, Splits, dataset_names, load_dataset
from mlbench.data._augment import CropFlip
from mlbench.data._normalize import Normalize
from mlbench.data._tensor import TensorSplit
from mlbench.errors import ConfigError

CPU = torch.device("cpu")
N_MNIST, N_MNIST_TEST = 50, 12
N_CIFAR_BATCH, N_CIFAR_TEST = 8, 10  # CIFAR-10: five training batches of 8
N_IMAGENET = {"train": 4, "val": 2}  # images per class
IMAGENET_CLASSES = ("n01", "n02", "n03")


# -- writing datasets in their true on-disk formats ------------------------------------


def encoded_images(n: int, shape: tuple[int, int, int], classes: int, seed: int):
    """uint8 images whose background is the label and whose first two pixels hold the id.

    Returns (images (n, C, H, W), labels (n,), ids (n,)); ids start at ``seed * 1000``.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    ids = np.arange(n) + seed * 1000
    images = np.broadcast_to(labels[:, None, None, None], (n, *shape)).astype(np.uint8)
    images[:, 0, 0, 0] = ids % 256
    images[:, 0, 0, 1] = ids // 256
    return images, labels, ids


def decode(x: torch.Tensor, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(labels from the bottom-right pixel, ids from the first two) of a normalized batch."""
    pixels = unnormalize(x, split)
    return pixels[:, 0, -1, -1], pixels[:, 0, 0, 0] + 256 * pixels[:, 0, 0, 1]


def unnormalize(x: torch.Tensor, split: Split) -> np.ndarray:
    """Normalized float batch -> uint8 pixel values (as int64), asserting they are on the grid."""
    norm = split.normalize
    mean = torch.tensor(norm.mean).view(1, -1, 1, 1)
    std = torch.tensor(norm.std).view(1, -1, 1, 1)
    pixels = (x.cpu().double() * std + mean) * 255
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)
    assert pixels.min() > -1e-3 and pixels.max() < 255 + 1e-3
    return pixels.round().long().numpy()


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed idx-ubyte file: magic 0x0800 | ndim (2051 images, 2049 labels)."""
    header = struct.pack(">I", 0x0800 | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST") -> int:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", N_MNIST, 1), ("t10k", N_MNIST_TEST, 2)):
        x, y, _ = encoded_images(n, (1, 28, 28), 10, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x[:, 0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    assert (raw / "train-images-idx3-ubyte").read_bytes()[:4] == struct.pack(">I", 2051)
    assert (raw / "train-labels-idx1-ubyte").read_bytes()[:4] == struct.pack(">I", 2049)
    return N_MNIST


def write_cifar_files(folder: Path, parts: dict[str, tuple[int, int]], label_key: str, meta):
    """Pickled CIFAR batches: {name: (n, seed)} -> files with (n, 3072) ``data`` rows."""
    folder.mkdir(parents=True)
    classes = len(next(iter(meta[1].values())))
    for name, (n, seed) in parts.items():
        x, y, _ = encoded_images(n, (3, 32, 32), classes, seed)
        entry = {"data": x.reshape(n, -1), label_key: y.tolist(), "filenames": [""] * n}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / meta[0]).write_bytes(pickle.dumps(meta[1]))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def trust_written_files(monkeypatch, cls: type, folder: Path) -> None:
    """Point ``cls``'s checksums at the files we wrote (torchvision checks official MD5s)."""
    for attr in ("train_list", "test_list"):
        files = [[name, md5(folder / name)] for name, _ in getattr(cls, attr)]
        monkeypatch.setattr(cls, attr, files)
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})


def write_cifar10(root: Path, monkeypatch=None) -> int:
    parts = {f"data_batch_{i}": (N_CIFAR_BATCH, i) for i in range(1, 6)}
    parts["test_batch"] = (N_CIFAR_TEST, 9)
    names = {"label_names": [f"c{i}" for i in range(10)]}
    folder = root / "cifar-10-batches-py"
    write_cifar_files(folder, parts, "labels", ("batches.meta", names))
    if monkeypatch is not None:
        trust_written_files(monkeypatch, datasets.CIFAR10, folder)
    return 5 * N_CIFAR_BATCH


def write_cifar100(root: Path, monkeypatch=None) -> int:
    parts = {"train": (5 * N_CIFAR_BATCH, 1), "test": (N_CIFAR_TEST, 9)}
    names = {"fine_label_names": [f"f{i}" for i in range(100)]}
    folder = root / "cifar-100-python"
    write_cifar_files(folder, parts, "fine_labels", ("meta", names))
    if monkeypatch is not None:
        trust_written_files(monkeypatch, datasets.CIFAR100, folder)
    return 5 * N_CIFAR_BATCH


def write_imagenet(root: Path) -> int:
    """PNG class folders; image value = 40 * class + 10 * index (+ 5 in val): unique."""
    for part, per_class in N_IMAGENET.items():
        for label, cls in enumerate(IMAGENET_CLASSES):
            (root / part / cls).mkdir(parents=True)
            for i in range(per_class):
                value = 40 * label + 10 * i + (5 if part == "val" else 0)
                pixels = np.full((24, 30, 3), value, dtype=np.uint8)
                pixels[:12, :15] = 255 - value  # a top-left quarter for augmentation to move
                Image.fromarray(pixels).save(root / part / cls / f"{i}.png")
    return N_IMAGENET["train"] * len(IMAGENET_CLASSES)


def write_files(name: str, root: Path, monkeypatch) -> int:
    """Write ``name``'s files under ``root``; return how many training samples it has."""
    writers = {
        "digits": lambda: 1797 - 359,
        "mnist": lambda: write_mnist(root),
        "fashion_mnist": lambda: write_mnist(root, "FashionMNIST"),
        "cifar10": lambda: write_cifar10(root, monkeypatch),
        "cifar100": lambda: write_cifar100(root, monkeypatch),
        "imagenet": lambda: write_imagenet(root / "imagenet"),
        "synthetic": lambda: DataConfig().synthetic_samples,
    }
    assert name in writers, f"no test files for dataset {name!r}: add a writer"
    return writers[name]()


def epoch(split: Split, batch_size: int = 16, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    batches = list(split.batches(batch_size, **kwargs))
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- the contract, for every registered dataset ----------------------------------------


IMAGE_DATASETS = [n for n in DATASETS.names() if n not in TEXT_DATASETS]  # text: test_text_data


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_every_dataset_serves_normalized_batches(name, tmp_path, monkeypatch):
    n_train = write_files(name, tmp_path, monkeypatch)
    cfg = DataConfig(dataset=name, data_dir=str(tmp_path), loader_workers=0, val_fraction=0.25)
    splits = load_dataset(cfg, CPU)
    info = splits.info
    assert isinstance(splits, Splits) and isinstance(info, DatasetInfo) and info.name == name
    assert len(splits.train) + len(splits.val) == n_train
    assert len(splits.val) == round(0.25 * n_train)
    for split in (splits.train, splits.val, splits.test):
        assert isinstance(split, Split)
        batches = list(split.batches(16, shuffle=True, augment=True, generator=gen(0)))
        assert len(batches) == split.num_batches(16) == -(-len(split) // 16)
        for x, y in batches:
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            assert x.shape == (len(y), *info.input_shape) and x.device == y.device == CPU
            assert torch.isfinite(x).all() and y.min() >= 0 and y.max() < info.num_classes
            unnormalize(x, split)  # normalized uint8 pixels, nothing else
        assert sum(len(y) for _, y in batches) == len(split)
    again = epoch(splits.train, shuffle=True, augment=True, generator=gen(0))
    first = epoch(splits.train, shuffle=True, augment=True, generator=gen(0))
    assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])


def test_registered_names_in_order_with_digits_the_default():
    assert dataset_names() == [
        "digits",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
        "imagenet",
        "synthetic",
        "shakespeare",
        "text",
    ]
    assert DataConfig().dataset == "digits"


def test_unknown_dataset_is_a_config_error_listing_names():
    with pytest.raises(ConfigError, match="unknown dataset 'svhn'.*digits, mnist.*synthetic"):
        load_dataset(DataConfig(dataset="svhn"), CPU)


# -- digits and synthetic --------------------------------------------------------------


def test_digits_loads_without_files_with_fixed_test_split(tmp_path):
    splits = load_dataset(DataConfig(data_dir=str(tmp_path / "none")), "cpu")
    assert splits.info == DatasetInfo("digits", (1, 8, 8), 10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1294, 144, 359)
    assert not (tmp_path / "none").exists()
    x, y = epoch(splits.train, 64)
    pixels = unnormalize(x, splits.train)
    assert set(np.unique(pixels)) <= {round(v * 255 / 16) for v in range(17)}
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1) < 0.01  # train stats
    assert set(y.tolist()) == set(range(10))
    means = torch.stack([x[y == k].mean(0) for k in range(10)]).flatten(1)
    tx, ty = epoch(splits.test, 64)  # labels kept with their images: nearest mean works
    assert (torch.cdist(tx.flatten(1), means).argmin(1) == ty).float().mean() > 0.85


def test_synthetic_respects_shape_and_classes_and_is_learnable():
    cfg = DataConfig(
        dataset="synthetic", synthetic_shape="2x5x7", synthetic_classes=4, synthetic_samples=400
    )
    splits = load_dataset(cfg, CPU)
    assert splits.info == DatasetInfo("synthetic", (2, 5, 7), 4)
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (400, 100)
    x, y = epoch(splits.train)
    means = torch.stack([x[y == k].mean(0) for k in range(4)])  # (4, 2, 5, 7)
    distances = torch.cdist(means.flatten(1), means.flatten(1))
    assert distances[~torch.eye(4, dtype=torch.bool)].min() > 1
    tx, ty = epoch(splits.test)  # nearest class mean, fit on train, scored on test
    guess = torch.cdist(tx.flatten(1), means.flatten(1)).argmin(1)
    assert (guess == ty).float().mean() > 0.9
    again = load_dataset(cfg, CPU)  # the same data for every run
    assert torch.equal(epoch(again.test)[0], tx)


# -- MNIST family ----------------------------------------------------------------------


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_files_keep_images_and_labels(name, folder, tmp_path):
    write_mnist(tmp_path, folder)
    splits = load_dataset(DataConfig(dataset=name, data_dir=str(tmp_path)), CPU)
    assert splits.info == DatasetInfo(name, (1, 28, 28), 10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (45, 5, N_MNIST_TEST)
    images, labels, ids = encoded_images(N_MNIST_TEST, (1, 28, 28), 10, seed=2)
    x, y = epoch(splits.test)
    decoded_labels, decoded_ids = decode(x, splits.test)
    assert np.array_equal(decoded_ids, ids) and np.array_equal(y.numpy(), labels)
    assert np.array_equal(decoded_labels, labels)


# -- CIFAR family ----------------------------------------------------------------------


@pytest.mark.parametrize("name, write", [("cifar10", write_cifar10), ("cifar100", write_cifar100)])
def test_cifar_files_keep_images_and_labels(name, write, tmp_path, monkeypatch):
    n_train = write(tmp_path, monkeypatch)
    splits = load_dataset(DataConfig(dataset=name, data_dir=str(tmp_path)), CPU)
    assert splits.info.input_shape == (3, 32, 32)
    assert splits.info.num_classes == (10 if name == "cifar10" else 100)
    assert len(splits.train) + len(splits.val) == n_train and len(splits.val) == 4
    for split in (splits.train, splits.val, splits.test):
        x, y = epoch(split)
        labels, _ = decode(x, split)
        assert np.array_equal(labels, y.numpy())


def test_cifar_val_is_fixed_disjoint_and_independent_of_global_seed(tmp_path, monkeypatch):
    n_train = write_cifar10(tmp_path, monkeypatch)
    cfg = DataConfig(dataset="cifar10", data_dir=str(tmp_path), val_fraction=0.3)
    ids = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        splits = load_dataset(cfg, CPU)
        train_ids = decode(epoch(splits.train)[0], splits.train)[1]
        val_ids = decode(epoch(splits.val)[0], splits.val)[1]
        ids.append({"train": set(train_ids), "val": set(val_ids)})
    assert ids[0] == ids[1]
    assert len(ids[0]["val"]) == round(0.3 * n_train)
    assert not ids[0]["train"] & ids[0]["val"]
    written = {i + 1000 * b for b in range(1, 6) for i in range(N_CIFAR_BATCH)}
    assert ids[0]["train"] | ids[0]["val"] == written


def test_cifar_augmentation_crops_and_flips_keeping_labels(tmp_path, monkeypatch):
    write_cifar10(tmp_path, monkeypatch)
    train = load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path)), CPU).train
    plain = epoch(train, shuffle=True, generator=gen(3))
    augmented = epoch(train, shuffle=True, augment=True, generator=gen(3))
    assert torch.equal(plain[1], augmented[1])  # same order, same labels
    assert augmented[0].shape == plain[0].shape and not torch.equal(augmented[0], plain[0])
    pixels = unnormalize(augmented[0], train)
    assert np.array_equal(pixels[:, 0, 16, 16], augmented[1].numpy())  # centre stays inside
    repeat = epoch(train, shuffle=True, augment=True, generator=gen(3))
    other = epoch(train, shuffle=True, augment=True, generator=gen(4))
    assert torch.equal(repeat[0], augmented[0]) and not torch.equal(other[0], augmented[0])


def test_augmentation_is_off_when_config_says_so_and_outside_train(tmp_path, monkeypatch):
    write_cifar10(tmp_path, monkeypatch)
    cfg = DataConfig(dataset="cifar10", data_dir=str(tmp_path), augment=False)
    splits = load_dataset(cfg, CPU)
    for split in (splits.train, splits.val, splits.test):
        plain = epoch(split, shuffle=True, generator=gen(0))
        asked = epoch(split, shuffle=True, augment=True, generator=gen(0))
        assert torch.equal(plain[0], asked[0])
    val = load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path)), CPU).val
    assert torch.equal(epoch(val, augment=True)[0], epoch(val)[0])  # no generator needed


def test_crop_flip_matches_a_per_sample_reference():
    images = torch.randint(0, 256, (64, 3, 8, 10), dtype=torch.uint8, generator=gen(0))
    aug = CropFlip(pad=2)
    params = aug.draw(64, gen(1), CPU)
    out = aug(images, params).numpy()
    assert {tuple(p) for p in params[:, 2:].tolist()} == {(0,), (1,)}
    for image, (dy, dx, flip), result in zip(images.numpy(), params.tolist(), out, strict=True):
        crop = np.pad(image, ((0, 0), (2, 2), (2, 2)))[:, dy : dy + 8, dx : dx + 10]
        assert np.array_equal(result, crop[:, :, ::-1] if flip else crop)


# -- TensorSplit batching --------------------------------------------------------------


def make_split(n: int = 37) -> TensorSplit:
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2)
    return TensorSplit(x, torch.arange(n), Normalize((0.0,), (1 / 255,), CPU))


def test_shuffled_epoch_sees_every_sample_exactly_once():
    split = make_split()
    x, y = epoch(split, 8, shuffle=True, generator=gen(0))
    assert sorted(y.tolist()) == list(range(37)) and not torch.equal(y, torch.arange(37))
    assert torch.equal(x[:, 0, 0, 0].long(), y)  # images travel with their labels
    assert torch.equal(epoch(split, 8)[1], torch.arange(37))  # unshuffled: in order


def test_shuffle_is_deterministic_per_generator_state():
    split = make_split()

    def order(generator: torch.Generator) -> torch.Tensor:
        return epoch(split, shuffle=True, generator=generator)[1]

    assert torch.equal(order(gen(5)), order(gen(5)))
    assert not torch.equal(order(gen(5)), order(gen(6)))
    g = gen(5)
    assert not torch.equal(order(g), order(g))  # the next epoch is another order


def test_drop_last_and_bad_batching():
    split = make_split()
    assert split.num_batches(8, drop_last=True) == 4 and split.num_batches(8) == 5
    assert [len(y) for _, y in split.batches(8, drop_last=True)] == [8] * 4
    with pytest.raises(ValueError, match="batch_size"):
        next(split.batches(0))
    with pytest.raises(ValueError, match="Generator"):
        split.batches(8, shuffle=True)


# -- missing or corrupt files ----------------------------------------------------------


@pytest.mark.parametrize(
    "name, folder",
    [
        ("mnist", "MNIST/raw"),
        ("fashion_mnist", "FashionMNIST/raw"),
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
    ],
)
def test_missing_files_say_where_they_belong(name, folder, tmp_path):
    cfg = DataConfig(dataset=name, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError) as err:
        load_dataset(cfg, CPU)
    message = str(err.value)
    assert str(tmp_path / "nowhere" / folder) in message and "--download" in message
    assert "\n" not in message and not (tmp_path / "nowhere").exists()  # nothing downloaded


def test_cifar_files_that_are_not_the_official_ones_are_reported(tmp_path):
    write_cifar10(tmp_path)  # official MD5s not patched: torchvision rejects the files
    with pytest.raises(ConfigError, match="corrupt or not the official ones"):
        load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path)), CPU)


def test_partial_mnist_names_the_missing_file(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError, match="lack t10k-labels-idx1-ubyte"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(tmp_path)), CPU)


def test_corrupt_mnist_is_a_config_error(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match="corrupt"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(tmp_path)), CPU)


def test_missing_imagenet_names_both_places(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_dataset(DataConfig(dataset="imagenet", data_dir=str(tmp_path)), CPU)
    assert str(tmp_path / "imagenet" / "train") in str(err.value)
    assert str(tmp_path / "train") in str(err.value)


def test_imagenet_without_images_or_val_is_a_config_error(tmp_path):
    (tmp_path / "imagenet" / "train" / "n01").mkdir(parents=True)
    cfg = DataConfig(dataset="imagenet", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="no images in .*train"):
        load_dataset(cfg, CPU)
    write_imagenet(tmp_path / "other")
    (tmp_path / "imagenet").rename(tmp_path / "empty")
    (tmp_path / "other" / "train").rename(tmp_path / "train")  # data_dir/train layout
    with pytest.raises(ConfigError, match=f"no val/ folder at {tmp_path / 'val'}"):
        load_dataset(cfg, CPU)


# -- ImageNet-style folders ------------------------------------------------------------


def imagenet_values(x: torch.Tensor, split: Split) -> list[int]:
    """Each image's value, read away from its top-left quarter (center-cropped images)."""
    return unnormalize_approx(x, split)[:, :, 150:, 150:].reshape(len(x), -1).mean(1).tolist()


def unnormalize_approx(x: torch.Tensor, split: Split) -> torch.Tensor:
    mean = torch.tensor(split.normalize.mean).view(1, -1, 1, 1)
    std = torch.tensor(split.normalize.std).view(1, -1, 1, 1)
    return (x.double() * std + mean) * 255


def test_imagenet_folders_keep_labels_and_split_sizes(tmp_path):
    write_imagenet(tmp_path)  # data_dir itself holds train/ and val/
    cfg = DataConfig(
        dataset="imagenet", data_dir=str(tmp_path), loader_workers=0, val_fraction=0.25
    )
    splits = load_dataset(cfg, CPU)
    assert splits.info == DatasetInfo("imagenet", (3, 224, 224), 3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (9, 3, 6)
    seen = []
    for split in (splits.train, splits.val, splits.test):
        x, y = epoch(split, 4, shuffle=True, generator=gen(0))
        values = [round(v) for v in imagenet_values(x, split)]  # constant away from the corner
        assert [v // 40 for v in values] == y.tolist()
        seen.append(values)
    assert sorted(seen[0] + seen[1]) == sorted(40 * k + 10 * i for k in range(3) for i in range(4))
    assert sorted(seen[2]) == sorted(40 * k + 10 * i + 5 for k in range(3) for i in range(2))


def test_imagenet_augmentation_depends_only_on_the_generator(tmp_path):
    write_imagenet(tmp_path / "imagenet")
    cfg = DataConfig(dataset="imagenet", data_dir=str(tmp_path), loader_workers=0)
    train = load_dataset(cfg, CPU).train
    torch.manual_seed(0)
    first = epoch(train, 4, shuffle=True, augment=True, generator=gen(1))
    torch.manual_seed(1)  # the global RNG plays no part
    again = epoch(train, 4, shuffle=True, augment=True, generator=gen(1))
    other = epoch(train, 4, shuffle=True, augment=True, generator=gen(2))
    plain = epoch(train, 4, shuffle=True, generator=gen(1))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert torch.equal(first[1], plain[1]) and not torch.equal(first[0], plain[0])
    workers = load_dataset(
        DataConfig(dataset="imagenet", data_dir=str(tmp_path), loader_workers=2), CPU
    )
    in_workers = epoch(workers.train, 4, shuffle=True, augment=True, generator=gen(1))
    assert torch.equal(in_workers[0], first[0]) and torch.equal(in_workers[1], first[1])


def test_digits_are_sklearns_load_digits_read_without_importing_sklearn():
    code = ("import sys, torch\nfrom mlbench.config import DataConfig\n"
            "from mlbench.data._builtin import digits\n"
            "s = digits(DataConfig(), torch.device('cpu'))\n"
            "print(len(s.train) + len(s.val) + len(s.test), 'sklearn' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["1797", "False"], proc.stderr[-2000:]

    from sklearn.datasets import load_digits

    from mlbench.data._builtin import digits_file

    table = np.loadtxt(digits_file(), delimiter=",")
    bunch = load_digits()
    assert np.array_equal(table[:, :-1].reshape(-1, 8, 8), bunch.images)
    assert np.array_equal(table[:, -1].astype(int), bunch.target)
