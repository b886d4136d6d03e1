"""The paper's findings as verdicts over tracked prune runs.

Each claim is a small function registered in ``CLAIMS`` (``@claim``); it reads a runs
frame (one row per prune run, as ``mlbench.report.usable_runs`` gives) and returns a
``Finding``: supported, contradicted, inconclusive or not testable on this model, from
paired differences over seeds (one base model per seed, checked) and test images (the
runs' logged predictions; seed-only where a run has none). "At every compression" is an
intersection-union test; a contradiction is Holm-corrected.

Example:
    >>> from mlbench.report import load_runs, usable_runs
    >>> from mlbench.report.findings import evaluate_findings, findings_display
    >>> findings, notes = evaluate_findings(usable_runs(load_runs()).runs)
    >>> findings_display(findings)
"""

from __future__ import annotations

from mlbench.report.findings import (
    _at_init,  # noqa: F401 - issue 19: Frankle et al. 2021's at-init claim
    _calibrated_claims,  # noqa: F401 - post-training claims
    _claims,  # noqa: F401 - registers the paper's claims
    _structure,  # noqa: F401 - issue 19: structured claims
)
from mlbench.report.findings._core import (
    CLAIMS,
    CONTRADICTED,
    INCONCLUSIVE,
    MARGIN,
    SUPPORTED,
    UNTESTABLE,
    Context,
    Finding,
    claim,
    non_inferior,
    verdict_from,
)
from mlbench.report.findings._pairs import at_compressions, over_complete_compressions
from mlbench.report.findings._run import (
    comparable,
    comparisons_table,
    evaluate_findings,
    findings_display,
    findings_table,
)
from mlbench.report.findings._stats import (
    ALPHA,
    MIN_SEEDS,
    Paired,
    holm,
    paired,
    paired_images,
    seeds_needed,
)

__all__ = [
    "ALPHA",
    "CLAIMS",
    "CONTRADICTED",
    "INCONCLUSIVE",
    "MARGIN",
    "MIN_SEEDS",
    "SUPPORTED",
    "UNTESTABLE",
    "Context",
    "Finding",
    "Paired",
    "at_compressions",
    "claim",
    "comparable",
    "comparisons_table",
    "evaluate_findings",
    "findings_display",
    "findings_table",
    "holm",
    "non_inferior",
    "over_complete_compressions",
    "paired",
    "paired_images",
    "seeds_needed",
    "verdict_from",
]
