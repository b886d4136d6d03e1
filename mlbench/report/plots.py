"""The paper's figures, drawn with matplotlib's object API (Agg; no pyplot, no GUI).

Every figure has a fixed size in pixels (``size_px``), so a saved PNG's dimensions are
known. Lines are means over seeds, bands ± one sample std, faint dots the single seeds;
x axes are log2; the dense base model is the dashed black line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from mlbench.names import label as metric_label
from mlbench.report.convention import speedup_column
from mlbench.report.frame import STRATEGY_ORDER, strategy_rank

matplotlib.use("Agg")  # harmless if already set; the report never opens a window

DPI = 100
ACCURACY_SIZE = (11.0, 8.0)  # inches: 1100 x 800 px
TUNED_SIZE = (11.0, 4.5)
LAYERS_HEIGHT = 4.5
PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#7f7f7f", "#9467bd", "#8c564b",
           "#e377c2", "#17becf", "#bcbd22")
LABELS = {m: metric_label(m) for m in ("acc1", "acc5", "delta_acc1", "delta_acc5",
                                  "compression_measured", "speedup", "speedup_conv_linear")}
PUBLISHED_MARKERS = "v^<>sPXD*hpd8H"


@dataclass(frozen=True)
class PlotFile:
    """A saved figure: where it is and its size in pixels."""

    path: Path
    width: int
    height: int


def colours(strategies: Iterable[str]) -> dict[str, str]:
    """A fixed colour per strategy: the baselines always get the same ones."""
    extra = sorted(set(strategies) - set(STRATEGY_ORDER))
    names = [*STRATEGY_ORDER, *extra]
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


@dataclass(frozen=True)
class Dense:
    """The dense base models of a panel: mean and std of their test accuracy."""

    acc1: float
    acc1_std: float
    acc5: float
    acc5_std: float
    n: int


def dense_reference(runs: pd.DataFrame) -> Dense:
    """One value per base model (``base_run_id``), then mean ± std over them."""
    bases = runs.drop_duplicates("base_run_id")
    return Dense(bases["base_acc1"].mean(), bases["base_acc1"].std(ddof=1),
                 bases["base_acc5"].mean(), bases["base_acc5"].std(ddof=1), len(bases))


def speedup_axis(summary: pd.DataFrame) -> str:
    """The paper's conv+linear speedup where any row has it, else the whole model's.

    issue 19: never a silent switch; ``mlbench.report.convention.speedup_column`` names
    the runs without it (the figures call it on their runs).
    """
    column = "speedup_conv_linear"
    have = f"{column}_mean" in summary and summary[f"{column}_mean"].notna().any()
    return column if have else "speedup"


def accuracy_figure(summary: pd.DataFrame, runs: pd.DataFrame, title: str,
                    *, delta: bool = False, published: pd.DataFrame | None = None) -> Figure:
    """2 x 2: top-1 / top-5 (rows) against compression / speedup (columns).

    ``delta`` plots the change from each run's own base model instead, with the
    ``published`` points (``mlbench.report.literature``: change from each paper's own
    dense model) beside them, one marker per paper. Each x axis ends at the data.
    """
    fig = _figure(ACCURACY_SIZE)
    axes = fig.subplots(2, 2, sharey="row")
    dense = dense_reference(runs)
    metrics = ("delta_acc1", "delta_acc5") if delta else ("acc1", "acc5")
    palette = colours(summary["strategy"])
    speed = speedup_column(runs, f"figure {title!r}")  # issue 19: named, never silent
    for row, metric in enumerate(metrics):
        for col, x in enumerate(("compression_measured", speed)):
            ax = axes[row][col]
            _reference(ax, dense, metric)
            for label, line in _lines(summary):
                _draw(ax, line, runs.loc[runs["recipe"].isin(line["recipe"])
                                         & (runs["strategy"] == line["strategy"].iloc[0])],
                      x, metric, palette[line["strategy"].iloc[0]], label)
            xs = [*runs[x].dropna(), *summary[f"{x}_mean"].dropna()]
            if delta and published is not None and len(published):
                xs += _published(ax, published, "compression" if col == 0 else "speedup",
                                 metric)
            _axes(ax, x if row == 1 else None, LABELS[metric] if col == 0 else None)
            _end_at_data(ax, xs)
    fig.suptitle(title)
    _legend(fig, *axes[0])
    return fig


def _published(ax: Axes, points: pd.DataFrame, x: str, metric: str) -> list[float]:
    """Published points, one marker per paper; returns the x values drawn."""
    drawn: list[float] = []
    for i, (paper, rows) in enumerate(points.groupby("paper", sort=True)):
        rows = rows[rows[x].notna() & rows[metric].notna()]
        if len(rows):
            ax.scatter(rows[x], rows[metric], s=30, marker=PUBLISHED_MARKERS[
                i % len(PUBLISHED_MARKERS)], facecolor="none", edgecolor="#444", lw=0.9,
                label=f"published: {paper}")
            drawn += list(rows[x])
    return drawn


def _end_at_data(ax: Axes, xs: list[float]) -> None:
    """Log-2 x limits a little (5%) beyond the smallest and largest x drawn."""
    xs = [v for v in xs if v > 0 and v == v]
    if xs:
        ax.set_xlim(min(xs) / 1.05, max(xs) * 1.05)


def tuned_figure(tuned: pd.DataFrame, untuned: pd.DataFrame, runs: pd.DataFrame,
                 title: str) -> Figure:
    """Top-1 against compression and speedup: tuned (solid) against untuned (dashed)."""
    fig = _figure(TUNED_SIZE)
    axes = fig.subplots(1, 2, sharey=True)
    palette = colours([*tuned["strategy"], *untuned["strategy"]])
    tuned_strategies = set(tuned["strategy"])
    speed = speedup_column(runs, f"figure {title!r}")  # issue 19: the same convention
    for col, x in enumerate(("compression_measured", speed)):
        ax = axes[col]
        _reference(ax, dense_reference(runs), "acc1")
        for summary, style, suffix in ((untuned, "--", "untuned"), (tuned, "-", "tuned")):
            for label, line in _lines(summary):
                strategy = line["strategy"].iloc[0]
                if strategy in tuned_strategies:
                    _draw(ax, line, None, x, "acc1", palette[strategy], f"{label} ({suffix})",
                          style, marker="D" if suffix == "tuned" else "o")
        _axes(ax, x, LABELS["acc1"] if col == 0 else None)
    fig.suptitle(title)
    _legend(fig, axes[0])
    return fig


def layers_figure(tables: Mapping[str, pd.DataFrame], compression: float, title: str,
                  classifier: str | None = None) -> Figure:
    """Grouped bars: the density of each conv / linear layer's weight, one bar per strategy.

    ``tables`` maps a strategy to its ``layers.csv`` (name, shape, params, density, ...).
    The dotted line is the whole model's density at this compression (1 / compression).
    ``classifier`` names the layer left dense (not prunable): it is shaded and labelled.
    """
    layers = _prunable_layers(next(iter(tables.values())))
    width_in = max(11.0, 0.35 * len(layers) * max(1, len(tables)) ** 0.5 + 3)
    fig = _figure((round(width_in), LAYERS_HEIGHT))
    ax = fig.subplots()
    palette = colours(tables)
    step = 0.8 / len(tables)
    ordered = sorted(tables.items(), key=lambda kv: strategy_rank(kv[0]))
    for i, (strategy, table) in enumerate(ordered):
        density = _prunable_layers(table).set_index("name")["density"].reindex(layers["name"])
        positions = [j - 0.4 + step * (i + 0.5) for j in range(len(layers))]
        ax.bar(positions, density.to_numpy(), step * 0.95, color=palette[strategy],
               label=strategy)
    ax.axhline(1 / compression, color="black", ls=":", lw=1,
               label=f"whole model at {compression:g}× (1/{compression:g})")
    names = list(layers["name"])
    if classifier in names:
        j = names.index(classifier)
        ax.axvspan(j - 0.45, j + 0.45, color="#bbbbbb", alpha=0.35, hatch="//", lw=0,
                   zorder=0, label="classifier: not prunable (kept dense)")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([f"{n}{' (classifier, not prunable)' if n == classifier else ''}"
                        f"\n{p:,}" for n, p in zip(layers["name"], layers["params"],
                                                   strict=True)],
                       rotation=90 if len(layers) > 12 else 0, fontsize=8)
    # log scale: at high compression the layers that differ differ by orders of magnitude
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())
    kept = [t["density"][t["density"] > 0].min() for t in tables.values()]
    ax.set_ylim(min([*kept, 1 / compression]) / 2, 1.3)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.set_ylabel("fraction of weights kept (log scale)")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    _legend(fig, ax)
    return fig


def save(fig: Figure, folder: Path, stem: str) -> list[PlotFile]:
    """Write ``stem.png`` and ``stem.svg`` into ``folder``; return both with their size."""
    folder.mkdir(parents=True, exist_ok=True)
    width, height = (round(v) for v in fig.get_size_inches() * DPI)
    out = []
    for ext in ("png", "svg"):
        path = folder / f"{stem}.{ext}"
        fig.savefig(path, dpi=DPI, format=ext, metadata=_metadata(ext))
        fig.set_layout_engine("none")  # laid out once: the second format reuses it
        out.append(PlotFile(path, width, height))
    return out


def _metadata(ext: str) -> dict[str, str | None]:
    # No creation date: the same runs give byte-identical files.
    return {"Date": None} if ext == "svg" else {"Software": "mlbench"}


def _figure(size: tuple[float, float]) -> Figure:
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _lines(summary: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One line per (strategy, recipe); the recipe named only where a strategy has several."""
    several = summary.groupby("strategy")["recipe"].nunique()
    lines = []
    for (strategy, recipe), line in summary.groupby(["strategy", "recipe"]):
        label = strategy if several[strategy] == 1 else f"{strategy} · {recipe}"
        lines.append((label, line.sort_values("compression")))
    return sorted(lines, key=lambda item: strategy_rank(item[0].split(" · ")[0]) + (item[0],))


def _draw(ax: Axes, line: pd.DataFrame, runs: pd.DataFrame | None, x: str, metric: str,
          colour: str, label: str, style: str = "-", marker: str = "o") -> None:
    xs = line[f"{x}_mean"].to_numpy()
    mean, std = line[f"{metric}_mean"].to_numpy(), line[f"{metric}_std"].fillna(0).to_numpy()
    ax.plot(xs, mean, style, color=colour, marker=marker, ms=4 if marker == "o" else 6, lw=1.6,
            label=label)
    low, high = mean - std, mean + std
    if not metric.startswith("delta_"):  # an accuracy band stays within [0, 1]
        low, high = low.clip(0, 1), high.clip(0, 1)
    ax.fill_between(xs, low, high, color=colour, alpha=0.15, lw=0)
    if runs is not None and len(runs):
        ax.scatter(runs[x], runs[metric], s=8, color=colour, alpha=0.35, lw=0)


def _reference(ax: Axes, dense: Dense, metric: str) -> None:
    if metric.startswith("delta_"):
        ax.axhline(0, color="black", ls="--", lw=1, label="dense base model")
        return
    mean, std = getattr(dense, metric), getattr(dense, f"{metric}_std")
    label = f"dense base model ({dense.n} seed{'s' if dense.n != 1 else ''})"
    ax.axhline(mean, color="black", ls="--", lw=1, label=label)
    if std == std:  # not NaN: more than one base model
        ax.axhspan(max(mean - std, 0), min(mean + std, 1), color="black", alpha=0.07, lw=0)


def _axes(ax: Axes, x: str | None, y: str | None) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_locator(NullLocator())  # minor log ticks: costly and unlabelled
    ax.grid(alpha=0.3, which="major")
    if x:
        ax.set_xlabel(LABELS[x])
    if y:
        ax.set_ylabel(y)


def _legend(fig: Figure, *axes: Axes) -> None:
    """One legend under the figure: every label of ``axes`` once."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center",
               ncol=min(len(entries), 4), frameon=False, fontsize=9)


def _prunable_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of weights with at least two dimensions (Conv and Linear layers)."""
    return table[table["shape"].astype(str).str.contains("x")].reset_index(drop=True)
