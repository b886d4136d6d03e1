"""``python -m mlbench report``: its options (the MLproject ``report`` parameters) and handler."""

from __future__ import annotations

import argparse
import time
from typing import Any

# Option defaults, as the MLproject entry point declares them (tests/test_cli.py checks).
DEFAULTS: dict[str, Any] = {
    "experiment": "mlbench", "filter": "", "output": "report", "layers_at": 0.0, "log": True,
}


def add_report_parser(sub: Any) -> None:
    """Add the ``report`` subcommand to ``mlbench``'s subparsers."""
    from mlbench.cli import _parse_bool, _parse_float

    report = sub.add_parser(
        "report", help="plots, tables and an HTML page from the tracked prune runs",
        description="Read every prune run of the experiments (one query), leave out failed, "
        "unfinished and duplicate runs, and write accuracy-vs-compression/speedup plots, "
        "summary and paired-comparison tables and one self-contained report.html; log "
        "them as a `report` run.")
    report.add_argument("--experiment", action="append", default=None, metavar="NAMES",
                        help="experiment name(s), repeatable or comma-separated "
                        f"(default: {DEFAULTS['experiment']})")
    report.add_argument("--filter", default=DEFAULTS["filter"], metavar="MLFLOW_FILTER",
                        help="MLflow search filter ANDed with the prune stage, e.g. "
                        "\"params.dataset = 'digits'\" (default: none)")
    report.add_argument("--output", default=DEFAULTS["output"], metavar="FOLDER",
                        help=f"folder for the files (default: {DEFAULTS['output']})")
    report.add_argument("--layers-at", dest="layers_at", type=_parse_float,
                        default=DEFAULTS["layers_at"], metavar="COMPRESSION",
                        help="compression of the per-layer density plot (default: 0 = the "
                        "largest one every strategy ran)")
    report.add_argument("--log", type=_parse_bool, nargs="?", const=True,
                        default=DEFAULTS["log"], metavar="BOOL",
                        help="log the files as a `report` run (default: True)")
    report.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    report.set_defaults(func=run_report_command)


def run_report_command(args: argparse.Namespace) -> int:
    """Build the report; print where it is and what it left out."""
    from mlbench.report.build import build_report
    from mlbench.tracking import quiet

    quiet()
    start = time.perf_counter()
    report = build_report(
        args.experiment or [DEFAULTS["experiment"]], args.output,
        filter_string=args.filter, tracking_uri=args.tracking_uri,
        layers_at=args.layers_at, log=args.log,
    )
    usable = report.usable
    left = ", ".join(f"{n} {why}" for why, n in usable.left_out.items()) or "none"
    print(f"{report.runs_read} prune runs read, {len(usable.runs)} used, left out: {left}")
    print(f"{len(report.plots)} plot files, tables and {report.html} "
          f"in {time.perf_counter() - start:.1f} s")
    if report.run_id:
        print(f"logged as report run {report.run_id}")
    return 0


FINDINGS_DEFAULTS: dict[str, Any] = {"experiment": "mlbench", "filter": "", "metric": "acc1",
                                     "output": ""}


def add_findings_parser(sub: Any) -> None:
    """Add the ``findings`` subcommand to ``mlbench``'s subparsers."""
    findings = sub.add_parser(
        "findings", help="the paper's claims as verdicts from the tracked prune runs",
        description="Read the prune runs (one fine-tuning recipe per (dataset, model)) and "
        "state each of the paper's claims as supported, contradicted or inconclusive, from "
        "paired differences over seeds, Holm-corrected, never finer than the test split "
        "resolves.")
    findings.add_argument("--experiment", action="append", default=None, metavar="NAMES",
                          help="experiment name(s), repeatable or comma-separated "
                          f"(default: {FINDINGS_DEFAULTS['experiment']})")
    findings.add_argument("--filter", default="", metavar="MLFLOW_FILTER",
                          help="MLflow search filter ANDed with the prune stage, e.g. "
                          "\"params.model = 'mlp'\" (default: none)")
    findings.add_argument("--metric", default="acc1", choices=("acc1", "acc5"),
                          help="the accuracy compared (default: acc1)")
    findings.add_argument("--output", default="", metavar="FOLDER",
                          help="also write findings.csv, findings.md and "
                          "findings-comparisons.csv there (default: print only)")
    findings.add_argument("--tracking-uri", default=None, metavar="URI",
                          help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or "
                          "./mlflow.db)")
    findings.set_defaults(func=run_findings_command)


def run_findings_command(args: argparse.Namespace) -> int:
    """Print the findings table (Markdown) and the notes; write the files if asked."""
    from mlbench.report.findings_files import findings_from_store, write_findings
    from mlbench.report.tables import to_markdown
    from mlbench.tracking import quiet

    quiet()
    result = findings_from_store(args.experiment or [FINDINGS_DEFAULTS["experiment"]],
                                 args.filter, args.tracking_uri, args.metric)
    print(to_markdown(result.display), end="")
    for note in result.notes:
        print(f"note: {note}")
    if args.output:
        print(f"written: {', '.join(str(p) for p in write_findings(result, args.output))}")
    return 0
