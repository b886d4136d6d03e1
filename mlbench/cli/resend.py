"""``python -m mlbench resend FOLDER``: send what a command kept when it gave up on the
tracking server (issue 20). The folder is the one its last line named."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlbench.cli._args import Parser


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``resend`` to the subparsers of ``build_parser``."""
    parser: Parser = sub.add_parser(
        "resend", help="send an outbox a failed command kept to the tracking server",
        description="Send the metrics, tags, checkpoints and artifacts a command kept in "
        "its outbox folder (it names the folder when it gives up on the server), in order, "
        "each once; then rerun that command: it resumes from the checkpoint sent. (What a "
        "command killed during an outage kept, the next command on the store sends itself.)")
    parser.add_argument("folder", help="the outbox folder the command named")
    parser.add_argument("--tracking-uri", default=None,
                        help="the server (default: $MLFLOW_TRACKING_URI)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resend; one line saying how much."""
    from mlbench.tracking import check_reachable, quiet, resend, resolve_uri

    uri = resolve_uri(args.tracking_uri)
    check_reachable(uri)
    quiet()
    sent = resend(Path(args.folder), uri)
    print(f"sent {sent} requests from {args.folder} to {uri}; rerun the command to resume")
    return 0
