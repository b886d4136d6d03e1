"""Structured (channel) against unstructured pruning, one speedup convention (issue 19).

Two questions, each paired by seed (the same base model), channel runs against every
unstructured strategy of the panel:

- at equal *theoretical* speedup (the paper's convention, ``speedup_conv_linear``): the
  accuracy difference, the unstructured accuracy interpolated per seed in log speedup;
- at equal *accuracy*: the difference in log2 theoretical speedup, the unstructured
  speedup interpolated per seed along its accuracy.

Neither interpolates along measured speedup: a masked model runs dense kernels, so its
measured speedup is noise around 1. The measured speedups go beside the verdict: their
median per kind and how many runs' intervals include 1 ("no measurable speedup").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlbench.report.findings._claims import at_speedups, scope_of, speedup_column
from mlbench.report.findings._core import Context, Finding, claim, verdict_from
from mlbench.report.findings._stats import Paired, paired


def _kinds(runs: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(channel strategies, unstructured strategies) present in ``runs``."""
    from mlbench.catalog import names  # reads the source: no torch

    present = set(runs["strategy"])
    channel = sorted(s for s in present if s.split("+")[0] in set(names("channel")))
    return channel, sorted(present - set(channel))


@claim("structured_beats_unstructured_at_speedup",
       "structured (channel) pruning beats unstructured pruning at equal theoretical speedup")
def structured_beats_unstructured(runs: pd.DataFrame, ctx: Context) -> Finding:
    """channel_X - unstructured_Y in accuracy at each channel run's theoretical speedup."""
    column = speedup_column(runs)
    runs = runs[runs[column].notna()]
    channel, others = _kinds(runs)
    comparisons = [c for s in channel for u in others
                   for c in at_speedups(runs, s, u, ctx, column)]
    finding = verdict_from("structured_beats_unstructured_at_speedup", ctx, scope_of(runs),
                           comparisons, min_groups=1,
                           groups=len({c.where for c in comparisons}),
                           group_word="theoretical speedup")
    finding.evidence += f" (speedup: {column}){measured_beside(runs, channel, others)}"
    return finding


@claim("structured_faster_at_equal_accuracy",
       "at equal accuracy structured (channel) pruning reaches a larger theoretical "
       "speedup than unstructured pruning")
def structured_faster_at_equal_accuracy(runs: pd.DataFrame, ctx: Context) -> Finding:
    """log2 speedup of channel_X - of unstructured_Y at each channel run's accuracy.

    The difference is in log2 speedup, not accuracy: its uncertainty is the seeds' alone
    (paired by seed), with no test-image term.
    """
    column = speedup_column(runs)
    runs = runs[runs[column].notna()]
    channel, others = _kinds(runs)
    comparisons = [c for s in channel for u in others
                   for c in at_accuracies(runs, s, u, ctx.metric, column)]
    finding = verdict_from("structured_faster_at_equal_accuracy",
                           ctx, scope_of(runs),
                           comparisons, min_groups=1,
                           groups=len({c.where for c in comparisons}), group_word="accuracy")
    finding.evidence += (f" (differences in log2 {column}){measured_beside(runs, channel, others)}")
    return finding


def at_accuracies(runs: pd.DataFrame, a: str, b: str, metric: str, column: str
                  ) -> list[Paired]:
    """log2 speedup of ``a`` - of ``b`` at each of a's (compression, seed) accuracies.

    b's log speedup is interpolated linearly along its own runs of the same seed sorted
    by accuracy, never extrapolated: an accuracy outside b's range gives no difference.
    """
    curves = {}
    for seed, rows in runs[runs["strategy"] == b].groupby("seed"):
        rows = rows.sort_values(metric)
        curves[seed] = (rows[metric].to_numpy(float), np.log2(rows[column].to_numpy(float)))
    out = []
    for c, at_c in runs[runs["strategy"] == a].groupby("compression"):
        diffs, accs = [], []
        for seed, speed, acc in zip(at_c["seed"], at_c[column].to_numpy(float),
                                    at_c[metric].to_numpy(float), strict=True):
            x, y = curves.get(seed, (np.empty(0), np.empty(0)))
            if len(x) < 2 or not x[0] <= acc <= x[-1]:
                continue
            diffs.append(math.log2(speed) - float(np.interp(acc, x, y)))
            accs.append(acc)
        if diffs:
            out.append(paired(f"{a} c={c:g} ({metric} {np.mean(accs):.3f})", a, b, diffs))
    return out


def measured_beside(runs: pd.DataFrame, channel: list[str], others: list[str]) -> str:
    """``; measured speedup: channels median 1.8x (0 of 6 not measurable), ...``."""
    if "measured_speedup" not in runs or runs["measured_speedup"].isna().all():
        return "; measured speedup: not logged"
    from mlbench.report.speed_interval import no_measurable_speedup

    parts = []
    for word, names in (("channels", channel), ("unstructured", others)):
        rows = runs[runs["strategy"].isin(names) & runs["measured_speedup"].notna()]
        if len(rows):
            none = int(no_measurable_speedup(rows).sum())
            parts.append(f"{word} median {rows['measured_speedup'].median():.2f}x "
                         f"({none} of {len(rows)} with no measurable speedup)")
    return "; measured speedup beside: " + ", ".join(parts) if parts else ""


__all__ = ["at_accuracies", "measured_beside", "structured_beats_unstructured",
           "structured_faster_at_equal_accuracy"]
