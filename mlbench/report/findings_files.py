"""Findings from a tracking store, and their files (CSV, Markdown) for the command and report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlbench.errors import ConfigError
from mlbench.report.findings import (
    Finding,
    comparisons_table,
    evaluate_findings,
    findings_display,
    findings_table,
)
from mlbench.report.frame import runs_frame, usable_runs
from mlbench.report.tables import to_markdown


@dataclass
class Findings:
    """The findings of a set of runs, as objects and as tables."""

    findings: list[Finding]
    notes: list[str]
    display: pd.DataFrame  # what people read
    table: pd.DataFrame  # one row per finding, raw
    comparisons: pd.DataFrame  # every comparison behind them


def findings_of(runs: pd.DataFrame, metric: str = "acc1") -> Findings:
    """Evaluate every registered claim over usable prune runs (``usable_runs(df).runs``)."""
    findings, notes = evaluate_findings(runs, metric)
    return Findings(findings, notes, findings_display(findings), findings_table(findings),
                    comparisons_table(findings))


def findings_from_store(experiments: Sequence[str], filter_string: str = "",
                        tracking_uri: str | None = None, metric: str = "acc1") -> Findings:
    """Read the prune runs from the store (one query) and evaluate the claims.

    Raises ConfigError when there is no finished prune run to judge.
    """
    from mlbench.tracking import query_prune_runs, split_names

    names = split_names(experiments)
    records = query_prune_runs(tracking_uri, names, filter_string)  # as report.load_runs
    df = runs_frame(records.runs, records.bases)
    usable = usable_runs(df) if not df.empty else None
    if usable is None or usable.runs.empty:
        where = (f"experiment(s) {', '.join(names)}" if names else "the store") + (
            f" matching {filter_string!r}" if filter_string else "")
        raise ConfigError(f"no finished prune runs in {where}; run `mlbench sweep` first")
    return findings_of(usable.runs, metric)


def write_findings(result: Findings, folder: str | Path) -> list[Path]:
    """``findings.csv``, ``findings.md`` and ``findings-comparisons.csv`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "findings.csv", folder / "findings.md", folder / "findings-comparisons.csv"]
    result.table.to_csv(paths[0], index=False)
    notes = "".join(f"\n- {n}" for n in result.notes)
    paths[1].write_text(to_markdown(result.display) + (f"\nNotes:{notes}\n" if notes else ""),
                        encoding="utf-8")
    result.comparisons.to_csv(paths[2], index=False)
    return paths
