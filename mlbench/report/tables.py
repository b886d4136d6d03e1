"""Tables: mean ± std over seeds, and strategies compared pairwise, paired by seed.

Spreads are sample standard deviations (ddof=1) over seeds; with one seed there is no
spread (NaN), never a zero. A paired comparison takes, at one compression, the seeds
both strategies ran (the same base model for both) and looks at the per-seed
differences, and, for top-1 where the runs logged their test predictions, at the test
images too (``mlbench.report.findings.paired_images``: seed variance plus the images'
McNemar-type variance); with fewer than MIN_SEEDS pairs it says so instead of guessing.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mlbench.names import SUMMARY_METRICS
from mlbench.predictions import Predictions
from mlbench.report.findings._stats import paired_images
from mlbench.report.frame import GROUP, strategy_rank

MIN_SEEDS = 3  # fewer paired seeds than this: "too few seeds to tell"
CONFIDENCE = 0.95


def summary_table(runs: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Per (dataset, model, group, strategy, recipe, compression): seeds, mean and std.

    Columns: the group keys, ``tuned``, ``n_seeds``, then ``<metric>_mean`` and
    ``<metric>_std`` for each metric.

    Example:
        >>> summary_table(usable_runs(df).runs)[["strategy", "acc1_mean", "acc1_std"]]
    """
    grouped = per_seed(runs, metrics).groupby(list(GROUP), sort=True, dropna=False)
    out = grouped.agg(tuned=("tuned", "first"), n_seeds=("seed", "nunique"))
    means = grouped[list(metrics)].mean().add_suffix("_mean")
    stds = grouped[list(metrics)].std(ddof=1).add_suffix("_std")
    columns = [c for m in metrics for c in (f"{m}_mean", f"{m}_std")]
    out = out.join(means).join(stds)[["tuned", "n_seeds", *columns]].reset_index()
    return _in_paper_order(out)


def per_seed(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per (group, seed): runs that share a base seed but differ in their
    calibration seed (post-training strategies) count once, as their mean, so that a
    spread is over seeds and never over calibration draws. Other runs pass unchanged."""
    keys = [*GROUP, "seed"]
    if not runs.duplicated(keys).any():
        return runs
    columns = [m for m in metrics if m in runs]
    agg = {m: "mean" for m in columns} | {"tuned": "first"}
    return runs.groupby(keys, sort=True, dropna=False).agg(agg).reset_index()


def _in_paper_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by panel, then strategy in the paper's order, then compression."""
    rank = df["strategy"].map(lambda s: strategy_rank(s)[0])
    keys = ["dataset", "model", "group", "_rank", "strategy", "recipe", "compression"]
    return (df.assign(_rank=rank).sort_values(keys, kind="stable").drop(columns="_rank")
            .reset_index(drop=True))


def paired_comparison(runs: pd.DataFrame, metrics: Sequence[str] = ("acc1", "acc5"),
                      predictions: Mapping[str, Predictions] | None = None) -> pd.DataFrame:
    """Every pair of strategies at every compression of a panel, paired by seed.

    Columns: dataset, model, group, compression, metric, ``a``, ``b`` (strategies),
    ``n_pairs``, ``diff_mean`` (a − b), ``diff_std``, ``ci_low``, ``ci_high`` (the
    95% t-interval of the mean difference) and ``verdict``: "a better", "b better",
    "no clear difference", or "too few seeds to tell (n=2, need 3)"; ``method``:
    ``seeds+images`` where every paired run has ``predictions`` (run_id -> its test
    predictions) on the same images and the metric is acc1, else ``seeds``. Runs of one
    base seed with several calibration seeds count as their mean (``seeds``).
    """
    rows = []
    keys = ["dataset", "model", "group", "compression"]
    arms = runs.assign(arm=_arm(runs, keys))
    for key, cell in arms.groupby(keys, sort=True):
        # several calibration seeds on one base seed: their mean, paired by seed alone
        once = not cell.duplicated(["seed", "arm"]).any()
        for metric in metrics:
            table = cell.pivot_table(index="seed", columns="arm", values=metric,
                                     aggfunc="mean", dropna=False)  # seed x arm
            ids = (cell.pivot(index="seed", columns="arm", values="run_id")
                   if once and predictions and metric == "acc1" and "run_id" in cell
                   else None)
            for a, b in itertools.combinations(sorted(table.columns, key=strategy_rank), 2):
                both = (table[a] - table[b]).dropna()  # seeds both ran
                images = _images(ids, both.index, a, b, predictions or {})
                rows.append({**dict(zip(keys, key, strict=True)), "metric": metric, "a": a,
                             "b": b, **_paired(both.to_numpy(float), a, b, images)})
    columns = [*keys, "metric", "a", "b", "n_pairs", "diff_mean", "diff_std", "ci_low",
               "ci_high", "verdict", "method"]
    return pd.DataFrame(rows, columns=columns)


def _arm(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The strategy, or "strategy · recipe" where a strategy has several recipes in a cell."""
    several = runs.groupby([*keys, "strategy"])["recipe"].transform("nunique") > 1
    return runs["strategy"].where(~several, runs["strategy"] + " · " + runs["recipe"])


def _images(ids: pd.DataFrame | None, seeds: pd.Index, a: str, b: str,
            predictions: Mapping[str, Predictions]) -> np.ndarray | None:
    """(seeds, images) correctness of a minus b, or None unless every run has it."""
    if ids is None or not len(seeds):
        return None
    rows = []
    for seed in seeds:
        pa, pb = predictions.get(str(ids.at[seed, a])), predictions.get(str(ids.at[seed, b]))
        if pa is None or pb is None or not pa.same_images(pb):
            return None
        rows.append(pa.correct.astype(float) - pb.correct)
    return np.stack(rows)


def _paired(diffs: np.ndarray, a: str, b: str, images: np.ndarray | None = None
            ) -> dict[str, object]:
    n = len(diffs)
    mean = float(diffs.mean()) if n else math.nan
    std = float(diffs.std(ddof=1)) if n > 1 else math.nan
    low = high = math.nan
    method = "seeds" if images is None else "seeds+images"
    if n < MIN_SEEDS:
        verdict = f"too few seeds to tell (n={n}, need {MIN_SEEDS})"
    else:
        if images is None:
            half = _t_quantile(n - 1) * std / math.sqrt(n)
            low, high = mean - half, mean + half
        else:
            c = paired_images("", a, b, images)
            mean, low, high = c.mean, c.ci_low, c.ci_high
        if low > 0:
            verdict = f"{a} better"
        elif high < 0:
            verdict = f"{b} better"
        else:
            verdict = "no clear difference"
    return {"n_pairs": n, "diff_mean": mean, "diff_std": std, "ci_low": low, "ci_high": high,
            "verdict": verdict, "method": method}


@functools.cache
def _t_quantile(dof: int) -> float:
    """Student's t quantile for a two-sided CONFIDENCE interval."""
    from scipy.special import stdtrit  # scipy.special: ~0.2 s to import, scipy.stats ~0.9 s

    return float(stdtrit(dof, 0.5 + CONFIDENCE / 2))


def pm(mean: float, std: float, digits: int = 4) -> str:
    """``0.9712 ± 0.0031``; a lone value (no spread) as ``0.9712``; NaN as ``–``."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as people read it: one ``mean ± std`` column per metric."""
    out = summary[["dataset", "model", "group", "strategy", "compression", "n_seeds"]].copy()
    out["compression"] = out["compression"].map(lambda c: f"{c:g}")
    for m, digits in (("acc1", 4), ("acc5", 4), ("delta_acc1", 4), ("pre_acc1", 4),
                      ("compression_measured", 2), ("speedup", 2),
                      ("speedup_conv_linear", 2)):
        out[m] = [pm(a, s, digits) for a, s in zip(summary[f"{m}_mean"], summary[f"{m}_std"],
                                                   strict=True)]
    return out


def glance_table(summary: pd.DataFrame, dense: tuple[float, float, int]) -> pd.DataFrame:
    """One panel at a glance: top-1 as ``mean ± std (seeds)``, strategies by compression.

    ``dense`` is the base models' (mean, std, count), shown as the first row.
    """
    def cell(mean: float, std: float, n: int) -> str:
        return f"{pm(mean, std, 3)} ({n})"

    label = _arm(summary, ["compression"])
    table = summary.assign(arm=label, cell=[
        cell(*v) for v in zip(summary["acc1_mean"], summary["acc1_std"], summary["n_seeds"],
                              strict=True)])
    wide = table.pivot(index="arm", columns="compression", values="cell").fillna("–")
    wide = wide.loc[sorted(wide.index, key=strategy_rank)]
    wide.columns = [f"{c:g}×" for c in wide.columns]
    dense_row = pd.DataFrame([[cell(*dense)] + [""] * (len(wide.columns) - 1)],
                             index=["dense base model"], columns=wide.columns)
    return pd.concat([dense_row, wide]).rename_axis("top-1 (seeds)").reset_index()


def comparison_display(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison as people read it: ``a − b`` as mean [95% CI]."""
    out = comparison[["dataset", "model", "group", "compression", "metric", "a", "b",
                      "n_pairs"]].copy()
    out["compression"] = out["compression"].map(lambda c: f"{c:g}")
    out["a − b"] = [
        pm(m, s) if math.isnan(lo) else f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        for m, s, lo, hi in zip(comparison["diff_mean"], comparison["diff_std"],
                                comparison["ci_low"], comparison["ci_high"], strict=True)
    ]
    out["verdict"] = comparison["verdict"]
    out["uncertainty from"] = comparison["method"]
    return out


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``df`` as it is (strings as given, numbers via str)."""
    cells = [[str(v) for v in df.columns]] + [[_cell(v) for v in row] for row in df.itertuples(
        index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("---" for _ in df.columns) + "|")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")
