"""The post-training (LLM-era) claims, checked on the transformers trained here (issue 22).

Wanda (Sun et al. 2023) and SparseGPT (Frantar & Alistarh 2023) report, on LLaMA/OPT
models, that calibrated pruning beats magnitude at 50%, that 2:4 costs more than 50%
unstructured, and (in the field's practice) that a small recovery fine-tuning recovers
most of the loss. Each claim here pairs runs by base seed (the same dense weights),
averaging over calibration seeds where several ran (per test image too, where the runs
logged their predictions), with the paper claims' rules (``verdict_from``: paired over
base seeds and test images, Holm-corrected contradictions). Pairs without
post-training runs get an inconclusive finding saying so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlbench.predictions import Predictions
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


@dataclass(frozen=True)
class AveragedPredictions:
    """Several runs' test predictions on the same images as each image's mean correctness
    (``mlbench.predictions.Predictions``'s interface for ``_pairs.image_diff``)."""

    correct: np.ndarray  # (N,) float: the share of the runs that got the image right
    labels: np.ndarray
    labels_digest: str
    split_digest: str

    def same_images(self, other: Predictions | AveragedPredictions) -> bool:
        """True when both were scored on the same test images (digests agree)."""
        return (self.labels_digest == other.labels_digest
                and self.split_digest == other.split_digest
                and len(self.labels) == len(other.labels))


def _over_calibration_seeds(runs: pd.DataFrame, ctx: Context
                            ) -> tuple[pd.DataFrame, Context]:
    """One row per (strategy, compression, base seed): the mean of its calibration seeds'
    runs (the pairs below take one run per base seed, and would otherwise keep only the
    latest), and ``ctx`` knowing each mean's test predictions as the per-image mean
    correctness of its runs, when every one of them logged predictions on the same
    images (then its comparisons count the test images' variance too; else seed-only)."""
    keys = ["strategy", "compression", "seed"]
    if "calib_seed" not in runs or not runs.duplicated(keys).any():
        return runs, ctx
    grouped = runs.groupby(keys, sort=False, dropna=False)
    numeric = [c for c in runs.select_dtypes("number").columns if c not in keys]
    out = grouped.first()
    out[numeric] = grouped[numeric].mean()
    out = out.reset_index()
    if "run_id" not in runs:
        return out, ctx
    averaged: dict[str, AveragedPredictions] = {}
    ids = []
    for _, rows in grouped:
        run_ids = [str(r) for r in rows["run_id"]]
        preds = [ctx.predictions.get(r) for r in run_ids]
        key = "mean:" + ",".join(sorted(run_ids))
        if all(p is not None for p in preds) and all(
                preds[0].same_images(p) for p in preds[1:]):  # type: ignore[union-attr]
            first = preds[0]
            averaged[key] = AveragedPredictions(
                np.mean([p.correct for p in preds], axis=0),  # type: ignore[union-attr]
                first.labels, first.labels_digest, first.split_digest)  # type: ignore[union-attr]
        ids.append(key if len(run_ids) > 1 else run_ids[0])
    out["run_id"] = ids  # a mean of runs: its key in the context's predictions, if any
    return out, dataclasses.replace(ctx, predictions={**ctx.predictions, **averaged})


@claim("calibrated_beat_magnitude_at_half",
       "Wanda and SparseGPT beat magnitude at 50% unstructured")
def calibrated_beat_magnitude(runs: pd.DataFrame, ctx: Context) -> Finding:
    """wanda - pt_magnitude and sparsegpt - pt_magnitude at 50%, paired by base seed."""
    half, ctx = _over_calibration_seeds(_at_half(_no_finetuning(runs)), ctx)
    present = set(half["strategy"])
    comparisons = [c for m in METHODS if {m, BASELINE} <= present
                   for c in at_compressions(half, m, BASELINE, ctx)]
    return verdict_from("calibrated_beat_magnitude_at_half", ctx, scope_of(runs), comparisons,
                        min_groups=1, groups=tested_groups(comparisons))


@claim("nm_costs_more_than_unstructured",
       "2:4 costs more accuracy than 50% unstructured")
def nm_costs_more(runs: pd.DataFrame, ctx: Context) -> Finding:
    """X - X_2_4 at 50% for each method X that ran both, paired by base seed."""
    half, ctx = _over_calibration_seeds(_at_half(_no_finetuning(runs)), ctx)
    present = set(half["strategy"])
    comparisons = [c for m in UNSTRUCTURED if {m, f"{m}_2_4"} <= present
                   for c in at_compressions(half, m, f"{m}_2_4", ctx)]
    return verdict_from("nm_costs_more_than_unstructured", ctx, scope_of(runs), comparisons,
                        min_groups=1, groups=tested_groups(comparisons))


@claim("calib_seed_moves_less_than_method",
       "the calibration seed moves results less than the method")
def calib_seed_less_than_method(runs: pd.DataFrame, ctx: Context) -> Finding:
    """Per base seed at 50%: the range of the method means minus the mean (over the
    calibrated methods, Wanda and SparseGPT: magnitude reads no calibration data, so its
    range over calibration seeds is zero and would dilute the mean) of the range over
    calibration seeds; positive supports the claim."""
    half = _at_half(_no_finetuning(runs))
    half = half[half["strategy"].isin(UNSTRUCTURED)]
    diffs = []
    if "calib_seed" in half:
        for _, rows in half.groupby("seed"):
            by = rows.groupby("strategy")[ctx.metric]
            if rows["strategy"].nunique() < 2 or rows["calib_seed"].nunique() < 2:
                continue
            spread = (by.max() - by.min())[lambda r: r.index.isin(METHODS)]
            if spread.empty:
                continue
            calib_range = float(spread.mean())
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
