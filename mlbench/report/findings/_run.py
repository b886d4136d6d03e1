"""Run every registered claim over a runs frame: one fine-tuning recipe per (dataset, model)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from mlbench.predictions import Predictions
from mlbench.report.findings._core import ACROSS, CLAIMS, Context, Finding


def comparable(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Untuned runs, and per (dataset, model) only the recipe with the most runs.

    Runs fine-tuned differently are never compared (the fairness protocol); the notes
    say what was left out.
    """
    untuned = runs[~runs["tuned"].astype(bool)] if "tuned" in runs else runs
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
    ctx = Context(metric=metric, predictions=dict(predictions or {}))
    lacking = int((~frame["run_id"].astype(str).isin(ctx.predictions)).sum()) \
        if "run_id" in frame else len(frame)
    if lacking:
        notes.append(f"{lacking} of {len(frame)} run(s) without test predictions: their "
                     "comparisons are seed-only (the test images' variance not counted)")
    out = []
    for name in claims or CLAIMS.names():
        fn = CLAIMS.get(name)
        if CLAIMS.meta(name)["scope"] == ACROSS:
            out.append(fn(frame, ctx))
            continue
        for _, group in frame.groupby(["dataset", "model"], sort=True):
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
