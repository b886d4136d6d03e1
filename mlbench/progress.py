"""Progress a person can follow anywhere: tqdm bars on a terminal, flushed lines elsewhere.

Piped to a file (CI, Kubernetes, ``nohup``) a bar prints nothing useful, so there each
epoch is one line (loss, val acc1, seconds) and each sweep cell one line (cells done of
all, and an estimate of the time left), flushed at once. The engine stays silent: it
only calls ``on_epoch``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

EpochCallback = Callable[[int, Mapping[str, float]], None]


def is_terminal(stream: TextIO | None = None) -> bool:
    """Does ``stream`` (stderr by default) go to a terminal?"""
    return (stream or sys.stderr).isatty()


def _fmt_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EpochProgress:
    """One training loop's progress: ``wrap`` its epochs, ``chain`` its on_epoch callback.

    Example:
        >>> progress = EpochProgress("fine-tune random-c8-s0", total=5)
        >>> fit(..., epochs=progress.wrap(range(1, 6)), on_epoch=progress.chain(log))
    """

    def __init__(self, desc: str, total: int, stream: TextIO | None = None,
                 terminal: bool | None = None, enabled: bool = True) -> None:
        self.desc, self.total, self.enabled = desc, total, enabled
        self.stream = stream or sys.stderr
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self._last = time.perf_counter()

    def wrap(self, epochs: Iterable[int]) -> Iterable[int]:
        """A tqdm bar over the epochs on a terminal; the plain iterable otherwise."""
        self._last = time.perf_counter()
        if not (self.enabled and self.terminal):
            return epochs
        from tqdm import tqdm

        return tqdm(epochs, desc=self.desc, unit="epoch", leave=False, file=self.stream)

    def chain(self, callback: EpochCallback | None) -> EpochCallback:
        """``callback``, then (off a terminal) one flushed line for the epoch."""

        def on_epoch(epoch: int, metrics: Mapping[str, float]) -> None:
            if callback is not None:
                callback(epoch, metrics)
            if self.enabled and not self.terminal:
                self.line(epoch, metrics)

        return on_epoch

    def line(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """``fine-tune random-c8-s0 epoch 3/5  train_loss=0.412  val_acc1=0.9120  4.1 s``."""
        now = time.perf_counter()
        seconds, self._last = now - self._last, now
        shown = "  ".join(f"{k}={metrics[k]:.4g}" for k in ("train_loss", "val_acc1")
                          if k in metrics)
        print(f"{self.desc} epoch {epoch}/{self.total}  {shown}  {seconds:.1f} s",
              file=self.stream, flush=True)


class CellProgress:
    """A sweep's progress: one flushed line per finished cell, with done/total and ETA."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream or sys.stdout
        self._start = time.perf_counter()

    def cell(self, text: str) -> None:
        """Count one finished cell and print ``[3/20, ~4 min left] <text>``."""
        self.done += 1
        elapsed = time.perf_counter() - self._start
        left = elapsed / self.done * (self.total - self.done)
        eta = f", ~{_fmt_seconds(left)} left" if self.done < self.total else ""
        print(f"[{self.done}/{self.total}{eta}] {text}", file=self.stream, flush=True)
