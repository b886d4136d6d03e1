"""The report: prune runs read back from MLflow as plots, tables and one HTML page.

``load_runs`` gives the tidy DataFrame (one row per prune run) for notebooks;
``build_report`` writes everything and logs it as a ``report`` run. This package never
imports mlflow: it reads the store through ``mlbench.tracking``.

Example:
    >>> from mlbench.report import load_runs, summary_table, usable_runs
    >>> df = load_runs(["mlbench"], tracking_uri="sqlite:////abs/mlflow.db")
    >>> summary_table(usable_runs(df).runs)
"""

from __future__ import annotations

from mlbench.report.build import Report, build_report, load_runs
from mlbench.report.frame import Usable, runs_frame, usable_runs
from mlbench.report.tables import MIN_SEEDS, paired_comparison, summary_table

__all__ = [
    "MIN_SEEDS",
    "Report",
    "Usable",
    "build_report",
    "load_runs",
    "paired_comparison",
    "runs_frame",
    "summary_table",
    "usable_runs",
]
