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
