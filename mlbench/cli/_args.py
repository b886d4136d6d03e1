"""argparse from the option schema (mlbench/options.py): one line and exit 2 on bad input."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from mlbench.cli._checks import check_store
from mlbench.config import RunConfig, TrackingConfig
from mlbench.grid import parse_list
from mlbench.options import TRACKING_KEYS, Option, command_options

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def dashed_flags(argv: Sequence[str]) -> list[str]:
    """``--data_dir X`` -> ``--data-dir X``: how ``mlflow run`` passes an undeclared ``-P``.

    An MLproject parameter the entry point does not declare reaches the command as
    ``--<name> <value>`` with the parameter's own spelling (underscores), so every option
    is reachable through ``mlflow run -P`` whether or not its entry point declares it.
    Values are never touched (only a token that is a whole flag, ``--name`` or ``--name=``).
    """
    out = []
    for token in argv:
        match = re.fullmatch(r"--([a-z0-9]+(?:_[a-z0-9]+)+)(=.*)?", token, flags=re.DOTALL)
        out.append(f"--{match[1].replace('_', '-')}{match[2] or ''}" if match else token)
    return out


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


def given_names(options: dict[str, Any]) -> dict[str, Any]:
    """The options given ("" is MLproject's "not given"); experiment names checked."""
    given = {k: v for k, v in options.items() if v != ""}
    names = [item for item in given.pop("experiment", None) or [] if item != ""]
    for item in names:  # "a,,b" is a typo: refused, never silently read as "a,b"
        parse_list(item, str, "--experiment")
    return {**given, "experiment": names} if names else given


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
