"""What every benchmark of the suite shares: figures, sections, side-by-side timing.

A figure is one measurement of mlbench next to its baseline, measured in the same run.
Its ratio always reads "mlbench's speed relative to the baseline": above 1, mlbench is
faster; 0.97 means mlbench runs at 97% of the baseline's speed.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class Figure:
    """mlbench against its baseline: values in ``unit``, the ratio as speed of mlbench.

    For a time (unit "s") the ratio is baseline / mlbench; for a rate ("samples/s")
    mlbench / baseline. ``ratio`` may be given (e.g. the median of paired ratios).
    """

    name: str
    mlbench: float
    baseline: float
    baseline_name: str
    unit: str = "s"
    target: str = ""
    ratio: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.ratio):
            if self.unit == "s":
                self.ratio = self.baseline / self.mlbench
            else:
                self.ratio = self.mlbench / self.baseline


@dataclass
class Section:
    """One benchmark's figures, with the notes that say how to read them."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load: tuple[float, float] = (math.nan, math.nan)  # 1-minute load average before, after
    seconds: float = math.nan  # wall time of the whole benchmark


def load1() -> float:
    """The 1-minute load average (other processes' load shows here)."""
    return os.getloadavg()[0]


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function: one warm-up call each, then ``repeats`` rounds
    alternating the order (a b c, c b a, ...) so load from other processes hits all alike."""
    for fn in fns.values():
        fn()
    names = list(fns)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            out[name].append(timed(fns[name]))
    return out


def median(values: list[float]) -> float:
    """The median (a shorthand for the benchmarks' tables)."""
    return statistics.median(values)
