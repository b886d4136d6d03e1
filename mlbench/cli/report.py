"""``python -m mlbench report``: plots, tables and one HTML page from the prune runs."""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

from mlbench.cli._args import add_command, given_names, values
from mlbench.cli._checks import check_output
from mlbench.config import TrackingConfig, check
from mlbench.options import ReportOptions


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``report`` to the subparsers of ``build_parser``."""
    add_command(sub, "report", run,
                help="plots, tables and an HTML page from the tracked prune runs",
                description="Read every prune run of the experiments (one query), leave out "
                "failed, unfinished and duplicate runs, and write accuracy-vs-compression/"
                "speedup plots, summary and paired-comparison tables and one self-contained "
                "report.html; log them as a `report` run.", empty_means_unset=True)


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Every option's value as the command uses it (a ConfigError if bad), flat."""
    given = given_names(values(args))
    opts = ReportOptions(**{k: v for k, v in given.items() if k != "experiment"})
    check(opts)
    return {**dataclasses.asdict(opts), "experiment": tuple(given.get("experiment") or ())}


def run(args: argparse.Namespace) -> int:
    """Build the report; print where it is and what it left out."""
    given = given_names(values(args))
    opts = ReportOptions(**{k: v for k, v in given.items() if k != "experiment"})
    check(opts)
    check_output(opts.output)
    TrackingConfig(tracking_uri=opts.tracking_uri or None).check()
    from mlbench.report.build import build_report
    from mlbench.tracking import quiet

    quiet()
    start = time.perf_counter()
    report = build_report(
        given.get("experiment") or [], opts.output,
        filter_string=opts.filter, tracking_uri=opts.tracking_uri or None,
        layers_at=opts.layers_at, log=opts.log, svg=opts.svg,
    )
    usable = report.usable
    left = ", ".join(f"{n} {why}" for why, n in usable.left_out.items()) or "none"
    print(f"{report.runs_read} prune runs read, {len(usable.runs)} used, left out: {left}")
    print(f"{len(report.plots)} plot files, tables and {report.html} "
          f"in {time.perf_counter() - start:.1f} s")
    if report.run_id:
        print(f"logged as report run {report.run_id}")
    return 0
