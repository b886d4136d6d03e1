"""``python -m mlbench grant``: let a worker user of a basic-auth MLflow server write runs.

Issue 20: the README's multi-user flow. Run as the server's admin (credentials in
MLFLOW_TRACKING_USERNAME/PASSWORD); the worker then writes to the experiments (and
registers versions of the models) named here.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlbench.cli._args import Parser


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``grant`` to the subparsers of ``build_parser``."""
    parser: Parser = sub.add_parser(
        "grant", help="give a basic-auth server's user EDIT on experiments (run as admin)",
        description="Give USER a permission on experiments (created if missing) and "
        "registered models of a basic-auth `mlflow server`, through MLflow's auth REST "
        "API. Run it with the admin's MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.")
    parser.add_argument("--user", required=True, help="the worker's user name")
    parser.add_argument("--experiment", action="append", required=True,
                        help="an experiment the worker writes runs to (repeat for more)")
    parser.add_argument("--model", action="append", default=[],
                        help="a registered model the worker adds versions to, e.g. "
                        "mlbench-cifar10-resnet20 (repeat for more)")
    parser.add_argument("--permission", default="EDIT",
                        help="READ, USE, EDIT or MANAGE (default: EDIT)")
    parser.add_argument("--tracking-uri", default=None,
                        help="the server (default: $MLFLOW_TRACKING_URI)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Grant, print one line per grant."""
    from mlbench.errors import ConfigError
    from mlbench.tracking import check_reachable, grant, quiet, resolve_uri

    uri = resolve_uri(args.tracking_uri)
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(f"--tracking-uri {uri}: grant needs an http(s) basic-auth server")
    check_reachable(uri)
    quiet()
    for line in grant(uri, args.user, args.experiment, args.model, args.permission):
        print(line)
    return 0
