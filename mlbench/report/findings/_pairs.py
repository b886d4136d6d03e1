"""Paired comparisons from runs: one run per (strategy, compression, seed), the same base
model on both sides (``base_run_id``, checked), per-image differences where logged.

A comparison of ``a`` and ``b`` pairs their runs seed by seed. A seed whose two runs come
from different base models is not paired (and counted in ``Paired.unpaired``). Where every
paired run logged its test predictions on the same test images (``mlbench.predictions``)
and the metric is top-1, the comparison uses seeds and images (``paired_images``); else
the seed-only t-test (``paired``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlbench.report.findings._core import Context
from mlbench.report.findings._stats import Paired, paired, paired_images


@dataclass(frozen=True)
class SeedDiff:
    """One seed's ``a - b``: in the metric, and per test image where both sides have it."""

    seed: int
    diff: float
    images: np.ndarray | None  # (N,) correctness of a minus (weighted) correctness of b


Row = Mapping[str, Any]  # one run: its columns by name


_KEYS = ("run_id", "base_run_id", "compression", "seed")


def cells(runs: pd.DataFrame, strategy: str, *columns: str) -> dict[tuple[float, int], Row]:
    """(compression, seed) -> the strategy's run there (the latest where there are several):
    its run and base model ids, compression, seed and ``columns``.

    Rows are plain dicts of those columns alone: a report compares every pair of
    strategies, and a pandas row per cell made this the report's slowest step (issue 21)."""
    keep = [c for c in dict.fromkeys((*_KEYS, *columns, "start_time")) if c in runs.columns]
    rows = runs.loc[runs["strategy"] == strategy, keep]
    if "start_time" in rows:
        rows = rows.sort_values("start_time", kind="stable")
    rows = rows.drop_duplicates(["compression", "seed"], keep="last")
    return {(float(r["compression"]), int(r["seed"])): r
            for r in sorted(rows.to_dict("records"),
                            key=lambda r: (float(r["compression"]), int(r["seed"])))}


def same_base(x: Row, y: Row) -> bool:
    """True unless both runs name a base model and the two differ."""
    bx, by = x.get("base_run_id"), y.get("base_run_id")
    known = [b for b in (bx, by) if isinstance(b, str) and b]
    return len(known) < 2 or bx == by


def image_diff(ctx: Context, a: Row, bs: Sequence[tuple[float, Row]]
               ) -> np.ndarray | None:
    """correct(a) - sum(w * correct(b)) per image; None unless all logged the same images."""
    if ctx.metric != "acc1" or not ctx.predictions:
        return None
    pa = ctx.predictions.get(str(a.get("run_id")))
    if pa is None:
        return None
    out = pa.correct.astype(float)
    for w, b in bs:
        pb = ctx.predictions.get(str(b.get("run_id")))
        if pb is None or not pa.same_images(pb):
            return None
        out = out - w * pb.correct
    return out


def combine(where: str, a: str, b: str, diffs: list[SeedDiff], unpaired: int = 0) -> Paired:
    """Seeds and images where every seed has images, else seeds alone."""
    vectors = [d.images for d in diffs]
    if diffs and all(v is not None for v in vectors) and len({len(v) for v in vectors}) == 1:
        return paired_images(where, a, b, np.stack(vectors), unpaired=unpaired)
    return paired(where, a, b, [d.diff for d in diffs], unpaired=unpaired)


def seed_diff(ctx: Context, seed: int, a: Row, b: Row) -> SeedDiff:
    """One seed's difference of two runs at the same point."""
    return SeedDiff(seed, float(a[ctx.metric]) - float(b[ctx.metric]),
                    image_diff(ctx, a, [(1.0, b)]))


def at_compressions(runs: pd.DataFrame, a: str, b: str, ctx: Context) -> list[Paired]:
    """``a - b`` at every compression both ran, paired by seed on one base model."""
    ta, tb = cells(runs, a, ctx.metric), cells(runs, b, ctx.metric)
    out = []
    for c in sorted({k[0] for k in ta} & {k[0] for k in tb}):
        diffs, unpaired = [], 0
        for seed in sorted({s for k, s in ta if k == c} & {s for k, s in tb if k == c}):
            ra, rb = ta[(c, seed)], tb[(c, seed)]
            if not same_base(ra, rb):
                unpaired += 1
                continue
            diffs.append(seed_diff(ctx, seed, ra, rb))
        if diffs or unpaired:
            out.append(combine(f"c={c:g}", a, b, diffs, unpaired))
    return out


def over_complete_compressions(runs: pd.DataFrame, a: str, b: str, ctx: Context,
                               where: str) -> tuple[Paired, list[float]]:
    """``a - b`` averaged per seed over the compressions *every* seed ran with both.

    Returns the comparison and the compressions it averaged. A compression that some seed
    lacks (for a or b) is left out for every seed, so each seed's mean covers the same
    compressions.
    """
    ta, tb = cells(runs, a, ctx.metric), cells(runs, b, ctx.metric)
    seeds = sorted({s for _, s in ta} | {s for _, s in tb})
    complete = [c for c in sorted({k[0] for k in ta} | {k[0] for k in tb})
                if all((c, s) in ta and (c, s) in tb and same_base(ta[(c, s)], tb[(c, s)])
                       for s in seeds)]
    diffs = []
    for s in seeds if complete else []:
        per_c = [seed_diff(ctx, s, ta[(c, s)], tb[(c, s)]) for c in complete]
        images = [d.images for d in per_c]
        mean_images = (np.mean(np.stack(images), axis=0)
                       if all(v is not None for v in images) else None)
        diffs.append(SeedDiff(s, float(np.mean([d.diff for d in per_c])), mean_images))
    return combine(where, a, b, diffs), complete


def at_speedups(runs: pd.DataFrame, a: str, b: str, ctx: Context, column: str) -> list[Paired]:
    """``a - b`` at each of a's (compression, seed) speedups, b interpolated per seed.

    b's accuracy (and per-image correctness) is interpolated linearly in log speedup
    between its own two runs of the same seed and base model that bracket a's speedup,
    never extrapolated: a speedup outside b's range gives no difference.
    """
    curves: dict[int, list[Row]] = {}  # seed -> b's runs, ascending speedup
    for (_, seed), row in sorted(cells(runs, b, ctx.metric, column).items()):
        curves.setdefault(seed, []).append(row)
    for seed in curves:
        curves[seed].sort(key=lambda r: float(r[column]))
    out = []
    by_c: dict[float, list[tuple[int, Row]]] = {}
    for (c, seed), row in sorted(cells(runs, a, ctx.metric, column).items()):
        by_c.setdefault(c, []).append((seed, row))
    for c, rows in by_c.items():
        diffs, speeds, unpaired = [], [], 0
        for seed, ra in rows:
            bracket = _bracket(curves.get(seed, []), float(ra[column]), column)
            if bracket is None:
                continue
            if not all(same_base(ra, rb) for _, rb in bracket):
                unpaired += 1
                continue
            acc_b = sum(w * float(rb[ctx.metric]) for w, rb in bracket)
            diffs.append(SeedDiff(seed, float(ra[ctx.metric]) - acc_b,
                                  image_diff(ctx, ra, bracket)))
            speeds.append(float(ra[column]))
        if diffs or unpaired:
            speed = f" (speedup {np.mean(speeds):.2f})" if speeds else ""
            out.append(combine(f"{a} c={c:g}{speed}", a, b, diffs, unpaired))
    return out


def _bracket(curve: list[Row], speed: float, column: str
             ) -> list[tuple[float, Row]] | None:
    """The two runs of ``curve`` around ``speed`` with their weights (log-linear), or None."""
    if len(curve) < 2 or not speed > 0:
        return None
    x = [math.log(float(r[column])) for r in curve]
    here = math.log(speed)
    if not x[0] <= here <= x[-1]:
        return None
    j = max(i for i in range(len(x)) if x[i] <= here)
    if j == len(x) - 1 or x[j] == here:
        return [(1.0, curve[j])]
    w = (here - x[j]) / (x[j + 1] - x[j])
    return [(1.0 - w, curve[j]), (w, curve[j + 1])]
