"""argparse from the option schema (mlbench/options.py): one line and exit 2 on bad input."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from mlbench.cli._checks import check_store
from mlbench.config import RunConfig, TrackingConfig
from mlbench.options import Option, command_options

EXIT_BAD_INPUT = 2
TRACKING_KEYS = ("tracking_uri", "experiment", "register", "checkpoint_every", "log_model",
                 "give_up")  # issue 20: --give-up


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def parse_int(text: str) -> int:
    """An integer option's text; argparse reports the error with the option's name."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def parse_float(text: str) -> float:
    """A number option's text; nan and inf are refused (no bound holds for them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_bool(text: str) -> bool:
    """true/false (also 1/0, yes/no, on/off), any case: ``mlflow run -P amp=True`` too."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


PARSERS: dict[str, Callable[[str], Any]] = {
    "int": parse_int, "float": parse_float, "bool": parse_bool, "str": str,
}


def _or_empty(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Accept "" as "not given" (MLproject's empty default for sweep and tune options)."""

    def parser(text: str) -> Any:
        return "" if text == "" else parse(text)

    parser.__name__ = getattr(parse, "__name__", "value")
    return parser


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option], *,
                empty_means_unset: bool = False) -> None:
    """One argparse option per schema Option, grouped; absent options stay absent."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for opt in options:
        group = groups.get(opt.group) or groups.setdefault(
            opt.group, parser.add_argument_group(opt.group))
        parse = PARSERS[opt.kind]
        if empty_means_unset and opt.group != "tracking":
            parse = _or_empty(parse)
        extra: dict[str, Any] = {"nargs": "?", "const": True} if opt.kind == "bool" else {}
        if opt.repeat:
            extra = {"action": "append"}
        shown = "" if opt.default is None else opt.default
        group.add_argument(
            opt.flag,
            dest=opt.key,
            type=parse,
            default=argparse.SUPPRESS,
            metavar="NAME" if opt.kind == "str" else opt.kind.upper(),
            help=f"{opt.help} (default: {shown})" if shown != "" else opt.help,
            **extra,
        )


def add_command(sub: Any, command: str, func: Callable[[argparse.Namespace], int], *,  # noqa: ANN401
                help: str, description: str, empty_means_unset: bool = False) -> Parser:
    """A subcommand with its schema options and handler."""
    parser = sub.add_parser(command, help=help, description=description)
    add_options(parser, command_options(command), empty_means_unset=empty_means_unset)
    parser.set_defaults(func=func)
    return parser


def values(args: argparse.Namespace) -> dict[str, Any]:
    """The options given, by flat key (command and handler left out)."""
    return {k: v for k, v in vars(args).items() if k not in ("command", "func")}


def unset_empty(given: dict[str, Any]) -> dict[str, Any]:
    """Drop options given as "" (MLproject's "not given"), except tracking ones."""
    return {k: v for k, v in given.items() if v != "" or k in TRACKING_KEYS}


def split(given: dict[str, Any]) -> tuple[RunConfig, TrackingConfig]:
    """Given options -> a validated RunConfig and TrackingConfig (a ConfigError if bad)."""
    given = dict(given)
    tracking = TrackingConfig(**{k: given.pop(k) for k in TRACKING_KEYS if k in given})
    tracking.check()
    check_store(tracking.tracking_uri)
    return RunConfig.from_flat(given), tracking


def quiet_mlflow() -> None:
    """Keep stderr for our one line: MLflow sets its logger to INFO when imported."""
    from mlbench.tracking import quiet

    quiet()
