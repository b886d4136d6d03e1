"""The paper's figures, drawn with matplotlib's object API (Agg; no pyplot, no GUI).

Every figure has a fixed size in pixels (``size_px``), so a saved PNG's dimensions are
known. Lines are means over seeds, bands ± one sample std, faint dots the single seeds;
x axes are log2; the dense base model is the dashed black line.

Every strategy has one style, the same in every figure (``styles``): a colour of its own
(30 colours before any repeats: every registered strategy has a colour no other one has)
and a marker from its kind of pruning's family, circles and triangles for masks, diamonds
for N:M, squares and crosses for channel removal, so that 16 or more strategies on one
axis stay apart. Log axes label their ticks as plain decimals with ``×`` (``1.05×``),
never ``1.05×10⁰``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from mlbench import catalog
from mlbench.names import label as metric_label
from mlbench.report.convention import speedup_column
from mlbench.report.frame import STRATEGY_ORDER, strategy_rank

matplotlib.use("Agg")  # harmless if already set; the report never opens a window

DPI = 100
ACCURACY_SIZE = (11.0, 8.0)  # inches: 1100 x 800 px
TUNED_SIZE = (11.0, 4.5)
LAYERS_HEIGHT = 4.5
# matplotlib's tab10 (the baselines keep their colours), then twenty darker or brighter
# ones: more colours than registered strategies, so no two registered strategies share one
PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#7f7f7f", "#9467bd", "#8c564b",
           "#e377c2", "#17becf", "#bcbd22", "#000080", "#808000", "#008080", "#800000",
           "#ff1493", "#4b0082", "#b8860b", "#2f4f4f", "#32cd32", "#000000", "#006400",
           "#ff4500", "#1e90ff", "#8b008b", "#a0522d", "#00ced1", "#9acd32", "#dc143c",
           "#4682b4", "#daa520")
# Markers by kind of pruning: a strategy's kind reads from its marker's shape.
MARKERS = {"masks": ("o", "v", "^", "<", ">"), "n:m": ("D", "d"), "channels": ("s", "P", "X", "p")}
LABELS = {m: metric_label(m) for m in ("acc1", "acc5", "delta_acc1", "delta_acc5",
                                  "compression_measured", "speedup", "speedup_conv_linear")}
PUBLISHED_MARKERS = "v^<>sPXD*hpd8H"


@dataclass(frozen=True)
class PlotFile:
    """A saved figure: where it is and its size in pixels."""

    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class Style:
    """How one strategy is drawn: its colour, its marker and its kind of pruning."""

    colour: str
    marker: str
    kind: str


def kind_of(strategy: str) -> str:
    """``masks``, ``n:m`` or ``channels`` (from the registered names: no torch import);
    a schedule suffix (``global_weight+gradual``) is the base strategy's kind."""
    base = strategy.split("+")[0]
    if base in catalog.names("channel") or base in catalog.names("unit"):
        return "channels"  # a smaller dense network: channels, or heads and neurons
    return "n:m" if base.startswith("semi_") or base in catalog.names("nm") else "masks"


def styles(strategies: Iterable[str]) -> dict[str, Style]:
    """A fixed style per strategy, the same in every figure of a report.

    The order is fixed by the registry, not by what a figure shows: the baselines first
    (the paper's order), then the other registered strategies by kind and name, then any
    other name (``strategy+schedule``) sorted. Strategy i gets colour ``i mod 30``; the
    strategies of one kind take that kind's markers in turn, skipping a (colour, marker)
    pair already taken, so no two strategies share both until 60 of one kind (N:M) or
    120 to 150 (channels, masks).

    Example:
        >>> styles(["global_weight", "global_l1_channel"])["global_l1_channel"].marker
        's'
    """
    wanted = set(strategies)
    registered = sorted(set(catalog.names("strategy")) - set(STRATEGY_ORDER),
                        key=lambda n: (list(MARKERS).index(kind_of(n)), n))
    order = [*STRATEGY_ORDER, *registered]
    order += sorted(wanted - set(order), key=lambda n: (strategy_rank(n.split("+")[0]), n))
    out: dict[str, Style] = {}
    taken: set[tuple[str, str]] = set()
    within: dict[str, int] = {}  # strategies of each kind styled so far
    for i, name in enumerate(order):
        kind = kind_of(name)
        family, j = MARKERS[kind], within.get(kind, 0)
        colour = PALETTE[i % len(PALETTE)]
        # the kind's markers in turn; past 30 strategies, the first one this colour lacks
        marker = next((m for k in range(len(family)) if (colour, m := family[(j + k) % len(
            family)]) not in taken), family[j % len(family)])
        out[name] = Style(colour, marker, kind)
        taken.add((colour, marker))
        within[kind] = j + 1
    return {name: style for name, style in out.items() if name in wanted}


def colours(strategies: Iterable[str]) -> dict[str, str]:
    """A fixed colour per strategy (``styles``' colours): the baselines always get the
    same ones."""
    return {name: style.colour for name, style in styles(strategies).items()}


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
    style = styles(summary["strategy"])
    speed = speedup_column(runs, f"figure {title!r}")  # one named convention, never silent
    lines = _lines(summary)
    seeds = [runs.loc[runs["recipe"].isin(line["recipe"])
                      & (runs["strategy"] == line["strategy"].iloc[0])] for _, line in lines]
    for row, metric in enumerate(metrics):
        for col, x in enumerate(("compression_measured", speed)):
            ax = axes[row][col]
            _reference(ax, dense, metric)
            for label, line in lines:
                strategy = line["strategy"].iloc[0]
                _draw(ax, line, None, x, metric, style[strategy].colour, label,
                      marker=style[strategy].marker)
            _dots(ax, [(part, style[line["strategy"].iloc[0]].colour)
                       for part, (_, line) in zip(seeds, lines, strict=True)], x, metric)
            xs = [*runs[x].dropna(), *summary[f"{x}_mean"].dropna()]
            if delta and published is not None and len(published):
                xs += _published(ax, published, "compression" if col == 0 else "speedup",
                                 metric)
            _axes(ax, x if row == 1 else None, LABELS[metric] if col == 0 else None)
            _end_at_data(ax, xs)
            log_ticks(ax, "x", base=2)
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
        log_ticks(ax, "x", base=2)
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


def save(fig: Figure, folder: Path, stem: str,
         formats: tuple[str, ...] = ("png", "svg")) -> list[PlotFile]:
    """Write ``stem.png`` and ``stem.svg`` (``formats``) into ``folder``; return each file
    with its size, in the order of ``formats``."""
    folder.mkdir(parents=True, exist_ok=True)
    width, height = (round(v) for v in fig.get_size_inches() * DPI)
    out = []
    for ext in formats:
        path = folder / f"{stem}.{ext}"
        # SVG text as <text> (DejaVu Sans, matplotlib's font), not one path per glyph:
        # a fifth of the SVG's time and a smaller, searchable file (issue 21).
        with matplotlib.rc_context({"svg.fonttype": "none"}):
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
    ax.plot(xs, mean, style, color=colour, marker=marker, ms=5, lw=1.6, label=label)
    low, high = mean - std, mean + std
    if not metric.startswith("delta_"):  # an accuracy band stays within [0, 1]
        low, high = low.clip(0, 1), high.clip(0, 1)
    ax.fill_between(xs, low, high, color=colour, alpha=0.15, lw=0)
    if runs is not None and len(runs):
        ax.scatter(runs[x], runs[metric], s=8, color=colour, alpha=0.35, lw=0)


def _dots(ax: Axes, parts: list[tuple[pd.DataFrame, str]], x: str, metric: str) -> None:
    """The single seeds of every line as one scatter (one artist per axes, not per line:
    drawing and saving cost per artist)."""
    parts = [(p, colour) for p, colour in parts if len(p)]
    if parts:
        ax.scatter(pd.concat([p[x] for p, _ in parts]), pd.concat([p[metric] for p, _ in parts]),
                   s=8, c=[colour for p, colour in parts for _ in range(len(p))], alpha=0.35,
                   lw=0)


def _reference(ax: Axes, dense: Dense, metric: str) -> None:
    if metric.startswith("delta_"):
        ax.axhline(0, color="black", ls="--", lw=1, label="dense base model")
        return
    mean, std = getattr(dense, metric), getattr(dense, f"{metric}_std")
    label = f"dense base model ({dense.n} seed{'s' if dense.n != 1 else ''})"
    ax.axhline(mean, color="black", ls="--", lw=1, label=label)
    if std == std:  # not NaN: more than one base model
        ax.axhspan(max(mean - std, 0), min(mean + std, 1), color="black", alpha=0.07, lw=0)


def log_ticks(ax: Axes, which: str, base: int = 10) -> None:
    """Readable ticks on a log axis, for its current limits: plain decimals with ``×``.

    Over at least a factor of ``base`` (2: two powers of 2; 10: over 1, 2, 5 of each
    decade) the ticks sit on powers; over a narrower range (a measured speedup from 1.0
    to 1.1) five evenly spaced round values (1×, 1.05×, 1.1×), where matplotlib would
    label its minor ticks ``1.025×10⁰`` over each other. No minor ticks either way.
    """
    axis = ax.xaxis if which == "x" else ax.yaxis
    low, high = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    if low > 0 and high / low < base:
        axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    elif base == 10:
        axis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5) if high / low < 1e3
                                          else (1,)))
    else:
        axis.set_major_locator(LogLocator(base=base))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    axis.set_minor_locator(NullLocator())  # minor log ticks: costly and unlabelled


def _axes(ax: Axes, x: str | None, y: str | None) -> None:
    ax.set_xscale("log", base=2)
    log_ticks(ax, "x", base=2)
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
               ncol=min(len(entries), 4 if len(entries) <= 12 else 6), frameon=False,
               fontsize=9)


def _prunable_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of weights with at least two dimensions (Conv and Linear layers)."""
    return table[table["shape"].astype(str).str.contains("x")].reset_index(drop=True)
