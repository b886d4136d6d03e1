"""The whole report: query once, cut honestly, tabulate, plot, write HTML, log a run.

Files written into the output folder: ``runs.csv`` (every prune run read, excluded
ones included with their status), ``summary.csv`` / ``summary.md``,
``comparison.csv`` / ``comparison.md``, ``glance.md`` (the at-a-glance tables),
``findings.csv`` / ``findings.md`` / ``findings-comparisons.csv``, ``plots/*.png`` (and
``plots/*.svg`` with ``svg=True``), where runs of calibrated (post-training) strategies
are among those used ``posttraining-ours.csv`` / ``posttraining-published.csv`` and their
``plots/posttraining-*.png`` (``mlbench.report.calibrated``), and
``report.html`` (self-contained). The same files are logged as a ``report`` run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlbench import __version__
from mlbench.errors import ConfigError
from mlbench.report import html, plots, speed_plots
from mlbench.report.calibrated import calibrated_section
from mlbench.report.findings_files import (
    Findings,
    findings_of,
    logged_predictions,
    write_findings,
)
from mlbench.report.frame import PANEL, Usable, recipe_differences, runs_frame, usable_runs
from mlbench.report.literature import (
    BUNDLED,
    SPEEDUP_CONVENTION,
    coverage,
    points_display,
    published_points,
    read_literature,
)
from mlbench.report.tables import (
    comparison_display,
    glance_table,
    paired_comparison,
    summary_display,
    summary_table,
    to_markdown,
)
from mlbench.tracking import download_artifacts, log_report, query_prune_runs, split_names

GLANCE = "At a glance"


def load_runs(experiments: Sequence[str] = (), filter_string: str = "",
              tracking_uri: str | None = None) -> pd.DataFrame:
    """Every prune run of the experiments as one tidy DataFrame (for notebooks).

    One row per run, any status (filter on ``status == "FINISHED"``, or use
    ``mlbench.report.usable_runs`` for the report's cut); columns as in
    ``mlbench.report.frame``.

    Example:
        >>> df = load_runs(["mlbench"], "params.dataset = 'digits'")
        >>> df[df.status == "FINISHED"].groupby(["strategy", "compression"]).acc1.mean()
    """
    records = query_prune_runs(tracking_uri, experiments, filter_string)
    return runs_frame(records.runs, records.bases)


@dataclass
class Report:
    """What ``build_report`` made."""

    folder: Path
    html: Path
    runs_read: int
    usable: Usable
    plots: list[plots.PlotFile] = field(default_factory=list)
    run_id: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall time
    svg: bool = False  # also write each plot as SVG


def build_report(
    experiments: Sequence[str],
    output: str | Path,
    *,
    filter_string: str = "",
    tracking_uri: str | None = None,
    layers_at: float = 0.0,
    log: bool = True,
    literature: str | Path | None = BUNDLED,
    svg: bool = False,
) -> Report:
    """Read the prune runs, write every table, plot and the HTML page; log a report run.

    ``layers_at`` picks the compression of the per-layer density plots (0: the largest
    one every strategy of a panel reached). ``literature`` is the paper's published
    results (``results.csv``; None leaves them out). ``svg`` also writes every plot as
    SVG (as long again as the PNGs; the page embeds the PNGs). The page reads: the glance tables,
    the findings, then each panel's figures and tables, then the post-training section
    (where calibrated runs are among them). Raises ConfigError when there is
    nothing to report (unknown or empty experiment, no finished run).
    """
    clock = _Clock()
    names = split_names(experiments)
    records = query_prune_runs(tracking_uri, names, filter_string)
    clock.lap("query")
    df = runs_frame(records.runs, records.bases)
    where = (f"experiment(s) {', '.join(names)}" if names else "any experiment") + (
        f" matching {filter_string!r}" if filter_string else "")
    if df.empty:
        hint = "" if filter_string else "; run `mlbench sweep` first"
        raise ConfigError(f"no prune runs in {where}{hint}")
    usable = usable_runs(df)
    if usable.runs.empty:
        raise ConfigError(f"no finished prune runs in {where} ({_counts(usable.left_out)})")
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    report = Report(folder, folder / "report.html", len(df), usable, svg=svg)
    df.to_csv(folder / "runs.csv", index=False)
    summary = summary_table(usable.runs)
    predictions = logged_predictions(records.uri, list(usable.runs["run_id"]))
    comparison = paired_comparison(usable.runs, predictions=predictions)
    _write_table(summary, summary_display(summary), folder / "summary")
    _write_table(comparison, comparison_display(comparison), folder / "comparison")
    found = findings_of(usable.runs, predictions=predictions)
    write_findings(found, folder)
    clock.lap("tables")
    published = read_literature(literature) if literature else None
    sections = _sections(report, summary, comparison, records.uri, layers_at, published)
    sections = _lead(sections, found)
    used = set(usable.runs["run_id"])  # the post-training panels: the same runs, after
    posttraining, files = calibrated_section([r for r in records.runs if r["run_id"] in used],
                                             folder, ("png", "svg") if svg else ("png",))
    if posttraining is not None:
        sections.append(posttraining)
        report.plots += files
    (folder / "glance.md").write_text("".join(
        f"{title}\n\n{to_markdown(df)}\n" for title, df, _ in sections[0].tables),
        encoding="utf-8")
    clock.lap("plots")
    meta = [f"mlbench {__version__} · tracking {records.uri} · {where}",
            f"{len(df)} prune runs read, {len(usable.runs)} used"]
    page = html.render("mlbench report", meta, _notes(usable, len(df)), sections)
    report.html.write_text(page, encoding="utf-8")
    clock.lap("html")
    if log:
        report.run_id = log_report(
            tracking_uri, names[0] if names else None, folder,
            {"experiments": ",".join(names), "filter": filter_string, "layers_at": layers_at},
            {"runs_read": len(df), "runs_used": len(usable.runs),
             "runs_left_out": usable.total_left_out},
        )
        clock.lap("log")
    report.seconds = clock.laps
    return report


class _Clock:
    """Wall time per phase, for the speed benchmark."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now


def _write_table(raw: pd.DataFrame, shown: pd.DataFrame, stem: Path) -> None:
    raw.to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".md").write_text(to_markdown(shown), encoding="utf-8")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "none left out"


def _notes(usable: Usable, read: int) -> list[str]:
    notes = []
    if usable.left_out:
        notes.append(f"Left out of every number below: {_counts(usable.left_out)} "
                     f"(of {read} prune runs read). Only FINISHED runs count, each cell once.")
    for (dataset, model), recipes in usable.recipes.items():
        if len(recipes) > 1:
            diffs = recipe_differences(usable.runs, recipes)
            described = "; ".join(
                f"{r}: " + ", ".join(f"{k}={v}" for k, v in d.items()) for r, d in diffs.items())
            notes.append(f"{dataset}/{model}: {len(recipes)} different fine-tuning recipes, "
                         f"shown apart and never averaged together ({described}).")
    return notes


def _lead(sections: list[html.Section], found: Findings) -> list[html.Section]:
    """The page's order: every panel's glance table, then the findings, then the panels."""
    glance = html.Section("At a glance")
    for section in sections:
        lead = [t for t in section.tables if t[0].startswith(GLANCE)]
        section.tables = [t for t in section.tables if not t[0].startswith(GLANCE)]
        glance.tables += [(f"{section.title}: {title[len(GLANCE) + 2:]}", df, True)
                          for title, df, _ in lead]
    findings = html.Section("Findings: the paper's claims on these runs", notes=[
        *found.notes, "Verdicts from paired differences over seeds (one base model per seed, "
        "checked) and test images (the runs' logged predictions; seed-only where a run has "
        "none), 95% intervals; \"at every\" claims are intersection-union tests, "
        "contradictions Holm-corrected; findings-comparisons.csv holds every comparison."])
    findings.tables.append(("Verdicts", found.display, True))
    return [glance, findings, *sections]


def _sections(report: Report, summary: pd.DataFrame, comparison: pd.DataFrame, uri: str,
              layers_at: float, published: pd.DataFrame | None = None
              ) -> list[html.Section]:
    runs = report.usable.runs
    sections = []
    several = runs.groupby(["dataset", "model"])["group"].nunique()
    for key, panel_runs in runs.groupby(list(PANEL), sort=True):
        dataset, model, group = key
        tuned = group.startswith("tuned-")
        name = f"{dataset} / {model}" + (" · tuned" if tuned else "")
        stem = f"{dataset}-{model}" + (f"-{group}" if several[(dataset, model)] > 1 else "")
        if several[(dataset, model)] > 1 and not tuned:
            name += f" · recipe {group}"
        in_panel = _in(summary, key)
        section = html.Section(name)
        points = None
        if published is not None:
            points = published_points(published, dataset, model)
            section.notes.append(coverage(published, dataset, model))
            if len(points):
                section.tables.append(("Published results overlaid (change from each "
                                       "paper's own dense model; speedups in "
                                       f"{SPEEDUP_CONVENTION})", points_display(points),
                                       False))
        if tuned:
            _tuned_plots(report, section, summary, summary[in_panel], panel_runs, stem)
        else:
            _accuracy_plots(report, section, summary[in_panel], panel_runs, stem, name, points)
            _layer_plot(report, section, panel_runs, uri, layers_at, stem, name)
        cmp = _in(comparison, key)
        dense = plots.dense_reference(panel_runs)
        section.tables += [
            (f"{GLANCE}: test top-1, mean ± std over seeds (number of seeds)",
             glance_table(summary[in_panel], (dense.acc1, dense.acc1_std, dense.n)), True),
            ("Summary: mean ± std over seeds", summary_display(summary[in_panel]), False),
            ("Strategies compared at each compression, paired by seed (a − b, 95% CI)",
             comparison_display(comparison[cmp]), False),
        ]
        sections.append(section)
    return sections


def _in(df: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    """Rows of ``df`` in the panel ``key`` (dataset, model, group)."""
    mask = pd.Series(True, index=df.index)
    for column, value in zip(PANEL, key, strict=True):
        mask &= df[column] == value
    return mask


def _add(report: Report, section: html.Section, fig: plots.Figure, stem: str, caption: str
         ) -> None:
    files = plots.save(fig, report.folder / "plots", stem,
                       ("png", "svg") if report.svg else ("png",))
    report.plots += files
    section.figures.append(html.Plot(files[0].path, caption))


def _accuracy_plots(report: Report, section: html.Section, summary: pd.DataFrame,
                    runs: pd.DataFrame, stem: str, name: str,
                    published: pd.DataFrame | None = None) -> None:
    seeds = runs["seed"].nunique()
    speed = plots.LABELS[plots.speedup_axis(summary)]
    _add(report, section, plots.accuracy_figure(summary, runs, f"{name}: test accuracy"),
         f"{stem}-accuracy",
         f"Test top-1 and top-5 against compression and {speed}: mean over "
         f"{seeds} seed(s), band ± 1 std, dots single seeds; dashed: the dense base model.")
    shown = published is not None and len(published) > 0
    _add(report, section,
         plots.accuracy_figure(summary, runs, f"{name}: change from the dense model",
                               delta=True, published=published),
         f"{stem}-delta",
         "The same as change from each run's own dense base model (same seed)"
         + ("; hollow markers: published results, as change from each paper's own dense "
            "model (the paper's Figures 1 and 3)." if shown else "."))
    if speed_plots.has_speed(runs):
        _add(report, section, speed_plots.speed_figure(runs, f"{name}: measured speed"),
             f"{stem}-speed",
             "Left: measured against theoretical speedup, one point per run (dashed: "
             "equal). Right: test top-1 against measured speedup; the marker's shape is "
             "the kind of pruning: circles and triangles mask weights, diamonds N:M, "
             "squares and crosses remove channels. Schedules other than one-shot appear as "
             "strategy+schedule.")
        _add(report, section, speed_plots.cost_figure(runs, f"{name}: training cost"),
             f"{stem}-cost",
             "Test top-1 against total training epochs (base + fine-tuning); every schedule "
             "gets the one-shot fine-tuning epochs unless the run says otherwise.")


def _tuned_plots(report: Report, section: html.Section, summary: pd.DataFrame,
                 tuned: pd.DataFrame, runs: pd.DataFrame, stem: str) -> None:
    setting = runs["setting"].iloc[0]
    same = (summary["dataset"] == runs["dataset"].iloc[0]) & (
        summary["model"] == runs["model"].iloc[0]) & ~summary["tuned"]
    untuned = summary[same & summary["recipe"].isin(
        report.usable.runs.loc[report.usable.runs["setting"] == setting, "recipe"])]
    if untuned["group"].nunique() > 1:  # compare with the untuned recipe with most runs
        untuned = untuned[untuned["group"] == untuned["group"].value_counts().index[0]]
    title = f"{runs['dataset'].iloc[0]} / {runs['model'].iloc[0]}: tuned against untuned"
    _add(report, section, plots.tuned_figure(tuned, untuned, runs, title), f"{stem}-tuned",
         "Top-1 of tuned fine-tuning (solid, each strategy its own tuned recipe) against "
         "the shared untuned recipe (dashed), mean ± std over seeds.")


def _layer_plot(report: Report, section: html.Section, runs: pd.DataFrame, uri: str,
                layers_at: float, stem: str, name: str) -> None:
    compression = layers_at or _common_compression(runs)
    at = runs[runs["compression"] == compression]
    if at.empty:
        section.notes.append(f"No runs at compression {compression:g} here: no per-layer plot.")
        return
    first = at.sort_values("seed").drop_duplicates("strategy")  # one seed per strategy
    with tempfile.TemporaryDirectory() as tmp:
        paths = download_artifacts(uri, list(first["run_id"]), "layers.csv", Path(tmp))
        tables = {row.strategy: pd.read_csv(paths[row.run_id]) for row in first.itertuples()}
    seeds = sorted(set(first["seed"]))
    fig = plots.layers_figure(tables, compression,
                              f"{name}: per-layer density at {compression:g}× "
                              f"(seed {', '.join(map(str, seeds))})",
                              classifier=_classifier(runs, next(iter(tables.values()))))
    _add(report, section, fig, f"{stem}-layers",
         f"Fraction of each prunable layer's weights kept at {compression:g}×, per strategy "
         "(from each run's layers.csv; labels give the layer's parameter count). Global "
         "strategies rank all layers together; layer strategies keep the same fraction "
         "in each.")


def _classifier(runs: pd.DataFrame, table: pd.DataFrame) -> str | None:
    """The classifier's layer name where the runs left it dense (the last conv / linear)."""
    pruned = runs["prune_classifier"].astype(bool).any() if "prune_classifier" in runs else False
    layers = table[table["shape"].astype(str).str.contains("x")]
    return None if pruned or layers.empty else str(layers["name"].iloc[-1])


def _common_compression(runs: pd.DataFrame) -> float:
    """The largest target compression that every strategy of the panel ran."""
    per = runs.groupby("strategy")["compression"].apply(set)
    common = set.intersection(*per) if len(per) else set()
    return max(common or set(runs["compression"]))
