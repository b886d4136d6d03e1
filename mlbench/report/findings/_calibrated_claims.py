"""The post-training (LLM-era) claims, checked on the transformers trained here (issue 22).

Wanda (Sun et al. 2023) and SparseGPT (Frantar & Alistarh 2023) report, on LLaMA/OPT
models, that calibrated pruning beats magnitude at 50%, that 2:4 costs more than 50%
unstructured, and (in the field's practice) that a small recovery fine-tuning recovers
most of the loss. Each claim here pairs runs by base seed (the same dense weights),
averaging over calibration seeds where several ran, with the paper claims' rules
(``verdict_from``: Holm-corrected paired t-tests over seeds). Pairs without
post-training runs get an inconclusive finding saying so.
"""

from __future__ import annotations

import pandas as pd

from mlbench.report.findings._claims import at_compressions, scope_of, tested_groups
from mlbench.report.findings._core import Context, Finding, claim, verdict_from
from mlbench.report.findings._stats import Paired, paired

METHODS = ("wanda", "sparsegpt")
BASELINE = "pt_magnitude"
UNSTRUCTURED = ("pt_magnitude", "wanda", "sparsegpt")
HALF = 2.0  # the calibrated kind's compression of the block linears at 50%


def _at_half(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[(runs["compression"] - HALF).abs() < 1e-9]


def _no_finetuning(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["epochs"].astype(float) == 0] if "epochs" in runs else runs


def _over_calibration_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (strategy, compression, base seed): the mean of its calibration seeds'
    runs (the pairs below take one run per base seed, and would otherwise keep only the
    latest). Such a row names no run, so its comparison is over seeds, not test images."""
    keys = ["strategy", "compression", "seed"]
    if "calib_seed" not in runs or not runs.duplicated(keys).any():
        return runs
    grouped = runs.groupby(keys, sort=False, dropna=False)
    numeric = [c for c in runs.select_dtypes("number").columns if c not in keys]
    out = grouped.first()
    out[numeric] = grouped[numeric].mean()
    out = out.reset_index()
    if "run_id" in out:
        out["run_id"] = ""  # a mean of runs: no one run's test predictions
    return out


@claim("calibrated_beat_magnitude_at_half",
       "Wanda and SparseGPT beat magnitude at 50% unstructured")
def calibrated_beat_magnitude(runs: pd.DataFrame, ctx: Context) -> Finding:
    """wanda - pt_magnitude and sparsegpt - pt_magnitude at 50%, paired by base seed."""
    half = _over_calibration_seeds(_at_half(_no_finetuning(runs)))
    present = set(half["strategy"])
    comparisons = [c for m in METHODS if {m, BASELINE} <= present
                   for c in at_compressions(half, m, BASELINE, ctx)]
    return verdict_from("calibrated_beat_magnitude_at_half", ctx, scope_of(runs), comparisons,
                        min_groups=1, groups=tested_groups(comparisons))


@claim("nm_costs_more_than_unstructured",
       "2:4 costs more accuracy than 50% unstructured")
def nm_costs_more(runs: pd.DataFrame, ctx: Context) -> Finding:
    """X - X_2_4 at 50% for each method X that ran both, paired by base seed."""
    half = _over_calibration_seeds(_at_half(_no_finetuning(runs)))
    present = set(half["strategy"])
    comparisons = [c for m in UNSTRUCTURED if {m, f"{m}_2_4"} <= present
                   for c in at_compressions(half, m, f"{m}_2_4", ctx)]
    return verdict_from("nm_costs_more_than_unstructured", ctx, scope_of(runs), comparisons,
                        min_groups=1, groups=tested_groups(comparisons))


@claim("calib_seed_moves_less_than_method",
       "the calibration seed moves results less than the method")
def calib_seed_less_than_method(runs: pd.DataFrame, ctx: Context) -> Finding:
    """Per base seed at 50%: the range of the method means minus the mean (over methods)
    of the range over calibration seeds; positive supports the claim."""
    half = _at_half(_no_finetuning(runs))
    half = half[half["strategy"].isin(UNSTRUCTURED)]
    diffs = []
    if "calib_seed" in half:
        for _, rows in half.groupby("seed"):
            by = rows.groupby("strategy")[ctx.metric]
            if rows["strategy"].nunique() < 2 or rows["calib_seed"].nunique() < 2:
                continue
            calib_range = float((by.max() - by.min()).mean())
            method_range = float(by.mean().max() - by.mean().min())
            diffs.append(method_range - calib_range)
    comparisons: list[Paired] = (
        [paired(f"c={HALF:g}", "method range", "calibration-seed range", diffs)]
        if diffs else [])
    return verdict_from("calib_seed_moves_less_than_method", ctx, scope_of(runs), comparisons,
                        min_groups=1, groups=tested_groups(comparisons))


@claim("recovery_closes_most_of_the_gap",
       "recovery fine-tuning closes most of the gap", fine_tuned=True)
def recovery_closes_gap(runs: pd.DataFrame, ctx: Context) -> Finding:
    """Runs with recovery fine-tuning (epochs > 0) of post-training strategies: per base
    seed, (acc - pre_acc) - (base_acc - pre_acc) / 2 at each (strategy, compression); a
    positive difference means more than half of the pruning loss was recovered."""
    m, pre, base = ctx.metric, f"pre_{ctx.metric}", f"base_{ctx.metric}"
    names = set(UNSTRUCTURED) | {f"{s}_{p}" for s in UNSTRUCTURED for p in ("2_4", "4_8")}
    tuned = runs[runs["strategy"].isin(names)]
    tuned = tuned[tuned["epochs"].astype(float) > 0] if "epochs" in tuned else tuned.iloc[0:0]
    comparisons = []
    if {pre, base} <= set(tuned.columns):
        for (strategy, c), rows in tuned.groupby(["strategy", "compression"]):
            gain = rows[m] - rows[pre]
            half_gap = (rows[base] - rows[pre]) / 2
            per_seed = (gain - half_gap).groupby(rows["seed"]).mean()
            comparisons.append(paired(f"{strategy} c={c:g}", "recovered", "half the gap",
                                      per_seed.to_numpy()))
    return verdict_from("recovery_closes_most_of_the_gap", ctx, scope_of(runs), comparisons,
                        min_groups=1, groups=tested_groups(comparisons))
