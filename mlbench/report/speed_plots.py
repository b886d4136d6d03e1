"""Plots of measured speed, structured against unstructured, and training cost.

- measured against theoretical speedup, one point per run, the diagonal drawn;
- test top-1 against measured speedup, channel (structured) and masked (unstructured)
  strategies on the same axes;
- test top-1 against total training epochs (base + fine-tuning), schedules side by side.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from mlbench.names import label as label_of
from mlbench.report.convention import speedup_column
from mlbench.report.plots import _figure, log_ticks, styles
from mlbench.report.speed_interval import NO_SPEEDUP_LABEL, draw_measured

KIND_WORDS = {"masks": "masked", "n:m": "N:M", "channels": "channels"}


def has_speed(runs: pd.DataFrame) -> bool:
    """Whether any run in the panel measured its speed."""
    return "measured_speedup" in runs and runs["measured_speedup"].notna().any()


def speed_figure(runs: pd.DataFrame, title: str) -> Figure:
    """Measured (batch 1) against theoretical speedup, and top-1 against measured speedup."""
    runs = runs[runs["measured_speedup"].notna()]
    theory = speedup_column(runs, "speed figure")  # issue 19: one named convention
    runs = runs[runs[theory].notna()]
    fig = _figure((10.0, 4.2))
    left, right = fig.subplots(1, 2)
    style = styles(runs["strategy"].unique())
    for strategy, part in sorted(runs.groupby("strategy", sort=False),
                                 key=lambda item: list(style).index(item[0])):
        label = f"{strategy} ({KIND_WORDS[style[strategy].kind]})"
        colour, marker = style[strategy].colour, style[strategy].marker
        # the paper's speedup convention; measured speedup with its interval
        draw_measured(left, part, theory, "measured_speedup", colour, marker, label)
        draw_measured(right, part, "measured_speedup", "acc1", colour, marker, label)
    top = max(runs[theory].max(), runs["measured_speedup"].max(), 1.0) * 1.1
    left.plot([1, top], [1, top], "k--", lw=1, label="measured = theoretical")
    left.scatter([], [], s=28, facecolors="none", edgecolors="k", label=NO_SPEEDUP_LABEL)
    left.set(xscale="log", yscale="log", xlabel=label_of(theory),
             ylabel="measured speedup (batch 1 latency)")
    right.set(xscale="log", xlabel="measured speedup (batch 1 latency)", ylabel="test top-1")
    for ax, which in ((left, "x"), (left, "y"), (right, "x")):
        log_ticks(ax, which)
    left.legend(fontsize=7, ncol=1 if len(style) <= 8 else 2)
    fig.suptitle(title)
    return fig


def cost_figure(runs: pd.DataFrame, title: str) -> Figure:
    """Test top-1 against total training epochs (base + fine-tuning), one colour a strategy."""
    runs = runs[runs["train_epochs_total"].notna()]
    fig = _figure((5.5, 4.2))
    ax = fig.subplots()
    style = styles(runs["strategy"].unique())
    for strategy, part in sorted(runs.groupby("strategy", sort=False),
                                 key=lambda item: list(style).index(item[0])):
        ax.scatter(part["train_epochs_total"], part["acc1"], c=style[strategy].colour,
                   marker=style[strategy].marker, label=strategy, s=28)
    ax.set(xlabel="training epochs in total (base + fine-tuning)", ylabel="test top-1")
    ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


__all__ = ["cost_figure", "has_speed", "speed_figure"]
