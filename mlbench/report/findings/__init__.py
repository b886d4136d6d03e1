"""The paper's findings as verdicts over tracked prune runs.

Each claim is a small function registered in ``CLAIMS`` (``@claim``); it reads a runs
frame (one row per prune run, as ``mlbench.report.usable_runs`` gives) and returns a
``Finding``: supported, contradicted or inconclusive, from paired differences over seeds
(the same base model), Holm-corrected, never finer than the test split can resolve.

Example:
    >>> from mlbench.report import load_runs, usable_runs
    >>> from mlbench.report.findings import evaluate_findings, findings_display
    >>> findings, notes = evaluate_findings(usable_runs(load_runs()).runs)
    >>> findings_display(findings)
"""

from __future__ import annotations

from mlbench.report.findings import (
    _calibrated_claims,  # noqa: F401 - post-training claims
    _claims,  # noqa: F401 - registers the paper's claims
)
from mlbench.report.findings._core import (
    CLAIMS,
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    Context,
    Finding,
    claim,
    non_inferior,
    verdict_from,
)
from mlbench.report.findings._run import (
    comparable,
    comparisons_table,
    evaluate_findings,
    findings_display,
    findings_table,
)
from mlbench.report.findings._stats import ALPHA, MIN_SEEDS, Paired, holm, paired, resolution

__all__ = [
    "ALPHA",
    "CLAIMS",
    "CONTRADICTED",
    "INCONCLUSIVE",
    "MIN_SEEDS",
    "SUPPORTED",
    "Context",
    "Finding",
    "Paired",
    "claim",
    "comparable",
    "comparisons_table",
    "evaluate_findings",
    "findings_display",
    "findings_table",
    "holm",
    "non_inferior",
    "paired",
    "resolution",
    "verdict_from",
]
