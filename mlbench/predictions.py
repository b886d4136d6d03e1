"""Per-image test predictions of a run: the artifact behind paired image statistics.

Two strategies pruned from one base model are scored on the same test images, so the
uncertainty of their accuracy difference comes from the images on which they disagree
(DESIGN.md, "Paired comparisons"). Each prune run logs its predicted label (argmax of
the logits) for every test image, in split order, as ``predictions.safetensors``:

- ``predicted``: uint8 (int16 above 256 classes), shape (N,)
- ``labels``: the true labels, same dtype and shape
- metadata ``format`` (``mlbench-predictions-1``), ``split`` (``test``), ``samples``,
  ``labels_digest`` (sha256 of the labels as int64, 16 hex digits) and ``split_digest``
  (the split's content digest, as its MLflow dataset input has it).

The report compares two runs' predictions only when both digests agree. The file is
safetensors (no pickle) and reads with ``safetensors.numpy``: ``load_predictions`` needs
no torch (the report never imports torch); ``predict`` imports it when called.

Example:
    >>> p = load_predictions(path)
    >>> float((p.predicted == p.labels).mean())  # the run's acc1
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from safetensors.numpy import load_file, save_file

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlbench.data import Split
    from mlbench.device import Precision

PREDICTIONS = "predictions.safetensors"  # the artifact's file name
FORMAT = "mlbench-predictions-1"


@dataclass(frozen=True)
class Predictions:
    """One run's test predictions: predicted and true labels, in split order."""

    predicted: np.ndarray  # (N,) integer class ids
    labels: np.ndarray  # (N,)
    labels_digest: str
    split_digest: str

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: the run got the image right."""
        return self.predicted == self.labels

    def same_images(self, other: Predictions) -> bool:
        """True when both runs were scored on the same test images (digests agree)."""
        return (self.labels_digest == other.labels_digest
                and self.split_digest == other.split_digest
                and len(self.labels) == len(other.labels))


class _Logs(Protocol):
    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None: ...


def labels_digest(labels: np.ndarray) -> str:
    """sha256 of the labels as little-endian int64, 16 hex digits."""
    return hashlib.sha256(np.asarray(labels, dtype="<i8").tobytes()).hexdigest()[:16]


def _compact(values: np.ndarray, num_classes: int) -> np.ndarray:
    return values.astype(np.uint8 if num_classes <= 256 else np.int16)


def save_predictions(predicted: np.ndarray, labels: np.ndarray, path: str | Path,
                     split_digest: str = "") -> Path:
    """Write ``predicted`` and ``labels`` (same length) to ``path`` in the format above."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape or predicted.ndim != 1:
        raise ValueError(f"predicted {predicted.shape} and labels {labels.shape} must be "
                         "the same (N,) shape")
    classes = int(max(predicted.max(initial=0), labels.max(initial=0))) + 1
    if classes > 32768:
        raise ValueError(f"{classes} classes do not fit int16 predictions")
    meta = {"format": FORMAT, "split": "test", "samples": str(len(labels)),
            "labels_digest": labels_digest(labels), "split_digest": split_digest}
    save_file({"predicted": _compact(predicted, classes), "labels": _compact(labels, classes)},
              str(path), metadata=meta)
    return Path(path)


def load_predictions(path: str | Path) -> Predictions:
    """Read a predictions file (numpy only); a ValueError if it is not one."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an mlbench predictions file (format "
                         f"{meta.get('format')!r}, expected {FORMAT!r})")
    tensors = load_file(str(path))
    return Predictions(tensors["predicted"].astype(np.int64), tensors["labels"].astype(np.int64),
                       meta.get("labels_digest", ""), meta.get("split_digest", ""))


def predict(model: nn.Module, split: Split, batch_size: int,
            precision: Precision | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, labels) over the whole ``split`` in its order: argmax of the logits
    (every next-token prediction of a language model, windows flattened in order)."""
    import contextlib

    import torch

    was_training = model.training
    model.eval()
    autocast = precision.autocast if precision else contextlib.nullcontext
    predicted, labels = [], []
    with torch.no_grad():
        for x, y in split.batches(batch_size):
            with autocast():
                logits = model(x)
            # one prediction per sample, or per token of a language model's windows
            predicted.append(logits.flatten(0, -2).argmax(dim=-1).cpu())
            labels.append(y.flatten().cpu())
    model.train(was_training)
    return torch.cat(predicted).numpy(), torch.cat(labels).numpy()


def log_predictions(tracker: _Logs, model: nn.Module, split: Split, batch_size: int,
                    precision: Precision | None = None,
                    known: tuple[torch.Tensor, torch.Tensor] | None = None) -> Predictions:
    """Log ``split``'s (the test split's) predictions as the run's
    ``predictions.safetensors``: ``known`` (predicted, true labels) where the final
    evaluation kept them for the whole split, in order, else predicted here."""
    from mlbench.data import split_digest

    if known is not None:
        predicted, labels = known[0].numpy(), known[1].numpy()
    else:
        predicted, labels = predict(model, split, batch_size, precision)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_predictions(predicted, labels, Path(tmp) / PREDICTIONS, split_digest(split))
        tracker.log_file(path)
        return load_predictions(path)


__all__ = ["FORMAT", "PREDICTIONS", "Predictions", "labels_digest",
                      "load_predictions", "log_predictions", "predict", "save_predictions"]
