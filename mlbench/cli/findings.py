"""``python -m mlbench findings``: the paper's claims as verdicts from the prune runs."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from mlbench.cli._args import add_command, given_names, values
from mlbench.config import TrackingConfig, check
from mlbench.options import FindingsOptions


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``findings`` to the subparsers of ``build_parser``."""
    add_command(sub, "findings", run,
                help="the paper's claims as verdicts from the tracked prune runs",
                description="Read the prune runs (one fine-tuning recipe per (dataset, "
                "model)) and state each of the paper's claims as supported, contradicted, "
                "inconclusive or not testable on this model, from paired differences over "
                "seeds (one base model per seed) and test images (the runs' logged "
                "predictions; seed-only for runs without them): \"at every\" claims are "
                "intersection-union tests, contradictions Holm-corrected.",
                empty_means_unset=True)


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Every option's value as the command uses it (a ConfigError if bad), flat."""
    given = given_names(values(args))
    opts = FindingsOptions(**{k: v for k, v in given.items() if k != "experiment"})
    check(opts)
    return {**dataclasses.asdict(opts), "experiment": tuple(given.get("experiment") or ())}


def run(args: argparse.Namespace) -> int:
    """Print the findings table (Markdown) and the notes; write the files if asked."""
    given = given_names(values(args))
    opts = FindingsOptions(**{k: v for k, v in given.items() if k != "experiment"})
    check(opts)
    TrackingConfig(tracking_uri=opts.tracking_uri or None).check()
    from mlbench.report.findings_files import findings_from_store, write_findings
    from mlbench.report.tables import to_markdown
    from mlbench.tracking import quiet

    quiet()
    result = findings_from_store(given.get("experiment") or [], opts.filter,
                                 opts.tracking_uri or None, opts.metric)
    print(to_markdown(result.display), end="")
    for note in result.notes:
        print(f"note: {note}")
    if opts.output:
        print(f"written: {', '.join(str(p) for p in write_findings(result, opts.output))}")
    return 0
