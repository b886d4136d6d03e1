"""Run every registered claim over a runs frame: one fine-tuning recipe per (dataset, model)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from mlbench.predictions import Predictions
from mlbench.report.findings._core import ACROSS, CLAIMS, Context, Finding


def comparable(runs: pd.DataFrame, *, fine_tuned: bool = False
               ) -> tuple[pd.DataFrame, list[str]]:
    """Untuned runs, and per (dataset, model) only the recipe with the most runs (with
    ``fine_tuned``: among the runs that fine-tune, epochs > 0).

    Runs fine-tuned differently are never compared (the fairness protocol); the notes
    say what was left out.
    """
    untuned = runs[~runs["tuned"].astype(bool)] if "tuned" in runs else runs
    if fine_tuned:
        untuned = untuned[untuned["epochs"].astype(float) > 0] if "epochs" in untuned \
            else untuned.iloc[0:0]
    notes, kept = [], []
    for (dataset, model), group in untuned.groupby(["dataset", "model"], sort=True):
        counts = group["recipe"].value_counts() if "recipe" in group else None
        if counts is not None and len(counts) > 1:
            notes.append(f"{dataset} / {model}: {len(counts) - 1} other fine-tuning recipe(s) "
                         f"({int(counts.iloc[1:].sum())} runs) left out; recipe "
                         f"{counts.index[0]} used")
            group = group[group["recipe"] == counts.index[0]]
        kept.append(group)
    if len(untuned) < len(runs):
        notes.append(f"{len(runs) - len(untuned)} tuned run(s) left out")
    frame = pd.concat(kept) if kept else untuned
    return frame, notes


def evaluate_findings(runs: pd.DataFrame, metric: str = "acc1",
                      claims: list[str] | None = None,
                      predictions: Mapping[str, Predictions] | None = None
                      ) -> tuple[list[Finding], list[str]]:
    """Every claim (or ``claims``) over the runs: pair claims once per (dataset, model).

    Args:
        runs: prune runs as ``mlbench.report.usable_runs(df).runs`` gives them.
        metric: ``acc1`` or ``acc5``.
        claims: names from ``CLAIMS`` (default: all, in registration order).
        predictions: run_id -> its test predictions (``mlbench.predictions``): comparisons
            whose runs all have them count the test images' variance too; the others
            are seed-only and say so.

    Returns:
        The findings and notes on what was left out.

    Example:
        >>> findings, notes = evaluate_findings(usable_runs(load_runs()).runs)
        >>> findings_table(findings)[["claim", "scope", "verdict"]]
    """
    frame, notes = comparable(runs)
    names = claims or CLAIMS.names()
    if any(CLAIMS.meta(n).get("fine_tuned") for n in names):
        recovery, _ = comparable(runs, fine_tuned=True)
        if len(recovery.index.difference(frame.index)):
            notes.append(f"the claims about fine-tuning read the fine-tuning recipe with the "
                         f"most runs per (dataset, model): {len(recovery)} run(s)")
    else:
        recovery = frame
    ctx = Context(metric=metric, predictions=dict(predictions or {}))
    lacking = int((~frame["run_id"].astype(str).isin(ctx.predictions)).sum()) \
        if "run_id" in frame else len(frame)
    if lacking:
        notes.append(f"{lacking} of {len(frame)} run(s) without test predictions: their "
                     "comparisons are seed-only (the test images' variance not counted)")
    out = []
    for name in names:
        fn, meta = CLAIMS.get(name), CLAIMS.meta(name)
        runs_of = recovery if meta.get("fine_tuned") else frame
        if meta["scope"] == ACROSS:
            out.append(fn(runs_of, ctx))
            continue
        # every (dataset, model) of the runs, so a pair without fine-tuned runs still
        # gets its finding ("no comparable runs")
        for (dataset, model), group in frame.groupby(["dataset", "model"], sort=True):
            if meta.get("fine_tuned"):
                tuned = recovery[(recovery["dataset"] == dataset)
                                 & (recovery["model"] == model)]
                group = tuned if len(tuned) else group
            out.append(fn(group, ctx))
    return out, notes


def findings_table(findings: list[Finding]) -> pd.DataFrame:
    """One row per finding: claim, statement, scope, verdict, evidence, add."""
    columns = ["claim", "statement", "scope", "verdict", "evidence", "add"]
    return pd.DataFrame([{c: getattr(f, c) for c in columns} for f in findings],
                        columns=columns)


def comparisons_table(findings: list[Finding]) -> pd.DataFrame:
    """Every comparison behind every finding (differences in accuracy, not points)."""
    rows = [{"claim": f.claim, "scope": f.scope, **dataclasses.asdict(c)}
            for f in findings for c in f.comparisons]
    columns = ["claim", "scope", "where", "a", "b", "n", "mean", "std", "image_se", "df",
               "ci_low", "ci_high", "p", "p_holm", "method", "unpaired", "images", "a_value",
               "b_value"]
    return pd.DataFrame(rows, columns=columns)


def findings_display(findings: list[Finding]) -> pd.DataFrame:
    """The findings as people read them (the report's and the command's table)."""
    table = findings_table(findings)
    out = table[["statement", "scope", "verdict", "evidence", "add"]].copy()
    out.columns = ["claim", "runs", "verdict", "evidence", "what would settle it"]
    out["what would settle it"] = out["what would settle it"].replace("", "–")
    return out
