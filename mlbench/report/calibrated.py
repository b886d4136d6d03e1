"""The post-training (transformer) panels and the published Wanda/SparseGPT results beside ours.

- ``sparsity_frame``: one row per prune run of a calibrated strategy, with the block
  linears' sparsity, next-token (or image) accuracy, loss and bits per character.
- ``sparsity_panel``: accuracy (or loss) against sparsity, one line per method with
  seeds' mean ± std, the N:M runs marked as points at their 50%.
- ``published_table``: WikiText perplexities of LLaMA-2 models pruned by magnitude,
  SparseGPT and Wanda, as relative changes from each dense model: *other models*, from
  the Wanda authors (see ``PUBLISHED_SOURCE``), never mixed with ours.
- ``ours_table``: our relative change in per-character perplexity (``2**(bpc - base_bpc)
  - 1``) at 50%, 2:4 and 4:8, mean ± std over seeds, in the same layout.

The report's builder (``mlbench.report.build``) calls ``calibrated_section``: where the
runs it uses hold calibrated strategies, ``write_calibrated`` writes the panels into
``plots/`` and both tables beside the other tables, and the page gains a section that
shows them after the CNN panels; where they hold none, nothing is written or shown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from mlbench.report import plots
from mlbench.report.html import Plot, Section
from mlbench.report.plots import DPI, PlotFile

PANEL_SIZE = (6.0, 4.0)  # inches: 600 x 400 px

PUBLISHED_SOURCE = (
    "Sun, Liu, Bair, Kolter, 'A Simple and Effective Pruning Approach for Large Language "
    "Models' (Wanda), arXiv:2306.11695; WikiText perplexity of LLaMA-2 as reported in the "
    "authors' repository README (github.com/locuslab/wanda, 'LLaMA-2 results'); SparseGPT "
    "is Frantar & Alistarh 2023, run by the Wanda authors. Other models than ours.")

# (model, dense perplexity, {pattern: {method: perplexity}}), as the source gives them
PUBLISHED: tuple[tuple[str, float, dict[str, dict[str, float]]], ...] = (
    ("LLaMA-2-7B", 5.12, {
        "50%": {"magnitude": 14.89, "sparsegpt": 6.51, "wanda": 6.42},
        "4:8": {"magnitude": 16.48, "sparsegpt": 8.12, "wanda": 7.97},
        "2:4": {"magnitude": 54.59, "sparsegpt": 10.17, "wanda": 11.02}}),
    ("LLaMA-2-13B", 4.57, {
        "50%": {"magnitude": 6.37, "sparsegpt": 5.63, "wanda": 5.56},
        "4:8": {"magnitude": 6.76, "sparsegpt": 6.60, "wanda": 6.55},
        "2:4": {"magnitude": 8.33, "sparsegpt": 8.32, "wanda": 8.27}}),
    ("LLaMA-2-70B", 3.12, {
        "50%": {"magnitude": 4.98, "sparsegpt": 3.98, "wanda": 3.98},
        "4:8": {"magnitude": 5.58, "sparsegpt": 4.59, "wanda": 4.47},
        "2:4": {"magnitude": 6.33, "sparsegpt": 5.40, "wanda": 5.16}}),
)
METHODS = {"pt_magnitude": "magnitude", "wanda": "wanda", "sparsegpt": "sparsegpt",
           "remove_heads": "heads", "remove_neurons": "neurons"}
PATTERNS = {"": None, "_2_4": "2:4", "_4_8": "4:8"}


def _method_pattern(strategy: str) -> tuple[str, str | None] | None:
    for prefix, method in METHODS.items():
        for suffix, pattern in PATTERNS.items():
            if strategy == prefix + suffix:
                return method, pattern
    return None


def sparsity_frame(runs: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Prune runs of calibrated strategies (run records: params, metrics) as rows.

    Columns: dataset, model, method, pattern (None, ``2:4``, ``4:8``), sparsity (target
    of the block linears: ``1 - 1/compression``), seed, calib_seed, epochs, acc1, acc5,
    loss, bpc, base_bpc, ppl_change (``2**(bpc - base_bpc) - 1``, text only), delta_acc1.
    """
    rows = []
    for run in runs:
        params, metrics = run["params"], run["metrics"]
        found = _method_pattern(params.get("strategy", ""))
        if found is None or metrics.get("acc1") is None:
            continue
        method, pattern = found
        c = float(params["compression"])
        bpc, base_bpc = metrics.get("bpc"), metrics.get("base_bpc")
        rows.append({
            "dataset": params.get("dataset"), "model": params.get("model"), "method": method,
            "pattern": pattern, "sparsity": 0.5 if pattern else 1 - 1 / c,
            "seed": int(params.get("seed", 0)), "calib_seed": int(params.get("calib_seed", 0)),
            "epochs": int(float(params.get("epochs", 0))), "acc1": metrics["acc1"],
            "acc5": metrics.get("acc5"), "loss": metrics.get("loss"), "bpc": bpc,
            "base_bpc": base_bpc,
            "ppl_change": (2 ** (bpc - base_bpc) - 1) if bpc is not None
            and base_bpc is not None else math.nan,
            "delta_acc1": metrics["acc1"] - metrics["base_acc1"]
            if metrics.get("base_acc1") is not None else math.nan,
        })
    return pd.DataFrame(rows)


def sparsity_panel(frame: pd.DataFrame, metric: str = "acc1", title: str = "") -> Figure:
    """A matplotlib Figure: ``metric`` against sparsity per method (lines: unstructured and
    head/neuron removal; markers: N:M at 50%), mean ± std over base and calibration seeds.
    Drawn with matplotlib's object API (no pyplot), as every figure of the report."""
    fig = Figure(figsize=PANEL_SIZE, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    markers = {"2:4": "s", "4:8": "^"}
    for method, rows in frame.groupby("method", sort=True):
        line = rows[rows["pattern"].isna()].groupby("sparsity")[metric].agg(["mean", "std"])
        color = None
        if len(line):
            drawn = ax.errorbar(100 * line.index, line["mean"], yerr=line["std"].fillna(0),
                                marker="o", ms=3, capsize=2, label=method)
            color = drawn[0].get_color()
        for pattern, marker in markers.items():
            pts = rows[rows["pattern"] == pattern][metric]
            if len(pts):
                ax.errorbar([50], [pts.mean()], yerr=[pts.std() if len(pts) > 1 else 0],
                            marker=marker, ms=7, ls="none", color=color, capsize=2,
                            label=f"{method} {pattern}")
    ax.set_xlabel("sparsity of the block linears (%)")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def published_table() -> pd.DataFrame:
    """The published perplexities and their relative change from each dense model."""
    rows = []
    for model, dense, patterns in PUBLISHED:
        for pattern, methods in patterns.items():
            for method, ppl in methods.items():
                rows.append({"source": "published (other models)", "model": model,
                             "pattern": pattern, "method": method, "dense_ppl": dense,
                             "ppl": ppl, "ppl_change": ppl / dense - 1})
    return pd.DataFrame(rows)


def ours_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Our per-character perplexity change at 50%, 2:4 and 4:8 (no recovery fine-tuning),
    mean and std over base and calibration seeds, per (dataset, model, method)."""
    text = frame[frame["ppl_change"].notna() & (frame["epochs"] == 0)
                 & (frame["sparsity"].sub(0.5).abs() < 1e-9)]
    if text.empty:
        return pd.DataFrame(columns=["source", "model", "pattern", "method", "ppl_change",
                                     "ppl_change_std", "runs"])
    text = text.assign(pattern=text["pattern"].fillna("50%"))
    out = (text.groupby(["dataset", "model", "pattern", "method"])["ppl_change"]
           .agg(ppl_change="mean", ppl_change_std="std", runs="count").reset_index())
    out.insert(0, "source", "mlbench (trained here)")
    return out


@dataclass
class CalibratedFiles:
    """What ``write_calibrated`` wrote: the panels and the two tables (as written)."""

    plots: list[PlotFile] = field(default_factory=list)  # every format written
    tables: dict[str, Path] = field(default_factory=dict)  # "published" / "ours" -> CSV
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # ... and their rows

    def paths(self) -> list[Path]:
        """Every file written, panels first."""
        return [p.path for p in self.plots] + list(self.tables.values())


def write_calibrated(runs: Iterable[Mapping[str, Any]], folder: Path,
                     formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Panels (accuracy and loss, one pair per dataset, model and recovery budget:
    ``posttraining-<dataset>-<model>[-ft<epochs>]-<metric>.png``) into ``folder/plots``, both
    tables (``posttraining-published.csv``, ``posttraining-ours.csv``) into ``folder``;
    nothing when no run is of a calibrated strategy. Returns the files written."""
    return _write(sparsity_frame(runs), folder, formats).paths()


def _write(frame: pd.DataFrame, folder: Path, formats: tuple[str, ...]) -> CalibratedFiles:
    files = CalibratedFiles()
    if frame.empty:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    # recovery fine-tuning budgets apart: runs made differently are never averaged together
    for (dataset, model, epochs), rows in frame.groupby(["dataset", "model", "epochs"]):
        recovery = f", {epochs} recovery epoch(s)" if epochs else ""
        for metric in ("acc1", "loss"):
            fig = sparsity_panel(rows, metric,
                                 f"{dataset} / {model}: post-training pruning{recovery}")
            stem = f"posttraining-{dataset}-{model}" + (f"-ft{epochs}" if epochs else "")
            files.plots += plots.save(fig, folder / "plots", f"{stem}-{metric}", formats)
    for name, table in (("published", published_table()), ("ours", ours_table(frame))):
        files.tables[name] = folder / f"posttraining-{name}.csv"
        files.frames[name] = table
        table.to_csv(files.tables[name], index=False)
    return files


def calibrated_section(runs: Iterable[Mapping[str, Any]], folder: Path,
                       formats: tuple[str, ...] = ("png",)) -> tuple[Section | None,
                                                                     list[PlotFile]]:
    """The report's post-training section and its plot files, from the run records it
    uses; ``(None, [])`` when none is of a calibrated strategy (nothing is written)."""
    frame = sparsity_frame(runs)
    files = _write(frame, folder, formats)
    if not files.plots:
        return None, []
    section = Section("Post-training pruning of transformers (calibrated strategies)", notes=[
        "Sparsity is the block linears' (the papers' count); lines: unstructured and "
        "head/neuron removal, mean ± std over base and calibration seeds; squares 2:4, "
        "triangles 4:8 at 50%.",
        "The published table holds other models than ours (LLaMA-2, WikiText perplexity): "
        + PUBLISHED_SOURCE])
    for plot in (p for p in files.plots if p.path.suffix == ".png"):  # the page embeds PNGs
        metric = "Test accuracy" if plot.path.stem.endswith("-acc1") else "Test loss"
        section.figures.append(Plot(plot.path, f"{metric} against the sparsity of the block "
                                               "linears, per method (runs with another "
                                               "recovery budget in a panel of their own)."))
    if files.frames["ours"].empty:
        section.notes.append("No language-model runs at 50%, 2:4 or 4:8 without recovery "
                             "fine-tuning here: no perplexity change of ours to set beside "
                             "the published ones.")
    else:
        section.tables.append((
            "Ours: change in per-character perplexity (2^(bpc - base bpc) - 1) at 50%, 2:4 "
            "and 4:8, no recovery fine-tuning, mean ± std over seeds", files.frames["ours"],
            True))
    section.tables.append((
        "Published, OTHER MODELS (LLaMA-2 on WikiText, from the Wanda authors): perplexity "
        "change from each dense model", files.frames["published"], True))
    return section, files.plots
