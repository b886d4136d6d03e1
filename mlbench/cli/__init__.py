"""``python -m mlbench {train,prune,sweep,tune,report,findings,list}``: a module per command.

Every option comes from the schema (mlbench/options.py), spelled with dashes
(``base_lr`` -> ``--base-lr``), with the MLproject parameters' names. Bad input prints
one line on stderr and exits with code 2 before any work starts; building the parser and
every check that needs no model or data import no torch, mlflow, optuna or pandas.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from mlbench.cli import findings, grant, prune, report, resend, sweep, train, tune
from mlbench.cli import list as list_command
from mlbench.cli._args import EXIT_BAD_INPUT, Parser, dashed_flags
from mlbench.errors import ConfigError, SweepIncomplete, TrackingUnavailable

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main", "run"]

_MODULES = (train, prune, sweep, tune, report, findings, list_command,
            grant, resend)  # issue 20: grant, resend


def build_parser() -> Parser:
    """The ``mlbench`` argument parser with its subcommands."""
    parser = Parser(
        prog="mlbench",
        description="Pruning benchmark: train a base model, prune, fine-tune, track in MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in _MODULES:
        module.add_parser(sub)
    return parser


def _leave_process_group() -> None:
    """Under torchrun, every rank leaves the process group together before exiting."""
    if "torch.distributed" in sys.modules:
        from mlbench.distributed import shutdown

        shutdown()


def _discard_project_run() -> None:
    """Refused under `mlflow run`: the run it opened must not stay as a FAILED result."""
    import os

    if os.environ.get("MLFLOW_RUN_ID"):  # mlflow loads only then: bad input stays light
        from mlbench.tracking import discard_project_run

        discard_project_run()


def run() -> NoReturn:
    """The ``mlbench`` command (and ``python -m mlbench``): ``main``, then a fast exit
    (``mlbench._exit``: the interpreter's teardown costs a short run time and memory)."""
    from mlbench._exit import exit_now

    try:
        code = main()
    except BrokenPipeError:  # the reader went away (`mlbench list | head -1`): no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing to flush to
        code = 141  # as a process that SIGPIPE ended (128 + 13)
    exit_now(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, 130 for Ctrl-C)."""
    try:
        args = build_parser().parse_args(dashed_flags(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse refused a value (exit 2) or printed --help (0)
        if exc.code == EXIT_BAD_INPUT:
            _discard_project_run()
        raise
    from mlbench._malloc import steady_malloc

    steady_malloc()  # before any tensor exists: see mlbench/_malloc.py
    try:
        code = args.func(args)
        _leave_process_group()
        return code
    except ConfigError as exc:
        print(f"mlbench {args.command}: error: {exc}", file=sys.stderr)
        _discard_project_run()
        return EXIT_BAD_INPUT
    except SweepIncomplete as exc:  # work that failed after it started, kept for a rerun
        print(f"mlbench {args.command}: {exc}", file=sys.stderr)
        return 1
    except TrackingUnavailable as exc:  # issue 20: the server kept failing; work kept
        print(f"mlbench {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        failure = _given_up()
        if failure is not None:  # issue 20: the sender stopped training with its line
            print(f"mlbench {args.command}: {failure}", file=sys.stderr)
            return 1
        print(f"mlbench {args.command}: interrupted", file=sys.stderr)
        return 130


def _given_up() -> TrackingUnavailable | None:
    """The tracking link's give-up, if it gave up (issue 20), in this process or in its
    tracking agent; no mlflow import."""
    for name in ("mlbench.tracking._sender", "mlbench.tracking._remote"):
        module = sys.modules.get(name)
        failure = module.given_up() if module is not None else None
        if failure is not None:
            return failure
    return None
