"""Fuzz every numeric and list option of every command: bad values are one line, exit 2.

Every value a user could mistype (0, negative, huge, nan, inf, an empty or repeated list
item) is fed to every numeric and list option of every command in one process, as
tests/test_cli.py does with its table. A value the schema's bounds refuse must give exit
code 2, one stderr line naming the option, and no traceback, before any work (so no run
is left in the store); a value the bounds allow must not be refused.
"""

from __future__ import annotations

import math

import pytest
from mlflow import MlflowClient

from mlbench.cli import build_parser
from mlbench.options import COMMANDS, Option, command_options
from tests.test_cli import fails

NUMBERS = ("0", "-1", "-0.5", "1e300", "1000000", "99999999999999999999", "nan", "inf",
           "-inf", "0.5")
LISTS = {"str": ("a,,b", ",", "x,", "layer_grad,layer_grad"),
         "int": ("1,,2", "1,1", "-1", "1e300", "99999999999", "nan"),
         "float": ("2,,4", "2,2", "0", "-3", "inf", "nan", "1e300")}


def allowed(opt: Option, text: str) -> bool:
    """Whether the schema's type and bounds accept ``text`` for ``opt``."""
    try:
        value = float(text)
    except ValueError:
        return False
    if not math.isfinite(value) or (opt.kind == "int" and value != int(value)):
        return False
    if opt.kind == "int" and not text.lstrip("-").isdigit():
        return False
    b = opt.bounds
    return (value > b.get("gt", -math.inf) and value >= b.get("ge", -math.inf)
            and value < b.get("lt", math.inf) and value <= b.get("le", math.inf))


def cases() -> list[tuple[str, Option, str]]:
    out = []
    for command in COMMANDS:
        for opt in command_options(command):
            if "items" in opt.bounds:
                out += [(command, opt, text) for text in LISTS[opt.bounds["items"]]]
            elif opt.kind in ("int", "float") and opt.key != "checkpoint_every":
                out += [(command, opt, text) for text in NUMBERS]
    return out


def test_the_fuzz_covers_every_numeric_and_list_option():
    fuzzed = {(c, o.key) for c, o, _ in cases()}
    for command in COMMANDS:
        for opt in command_options(command):
            if opt.kind in ("int", "float") or "items" in opt.bounds:
                assert (command, opt.key) in fuzzed or opt.key == "checkpoint_every"


def test_every_bad_number_or_list_item_is_one_line_exit_2(tmp_path, capsys,
                                                          monkeypatch):
    """Every refused value: one line naming the option, exit 2, nothing in the store."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    capsys.readouterr()  # MLflow's lines on creating the store
    preset = tmp_path / "p.yaml"
    preset.write_text("dataset: synthetic\nsynthetic_shape: 1x8x8\n")
    build_parser()  # warm
    failures = []
    for command, opt, text in cases():
        if opt.kind in ("int", "float") and allowed(opt, text):
            continue  # in range: not a bad input (whether it runs is other tests' concern)
        argv = [command, f"{opt.flag}={text}"]
        if command in ("sweep", "tune") and opt.key != "project":
            argv += ["--project", str(preset)]
        argv += ["--tracking-uri", uri] if command != "list" else []
        try:
            line = fails(argv, capsys)
        except AssertionError as exc:
            failures.append(f"{' '.join(argv[:2])}: {exc}")
            continue
        name = opt.flag
        if name not in line and opt.key.replace("_", "-") not in line:
            failures.append(f"{' '.join(argv[:2])}: {line!r} does not name {name}")
    assert failures == [], "\n".join(failures)
    client = MlflowClient(uri)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


@pytest.mark.parametrize(("argv", "part"), [
    (["prune", "--prune-schedule", "iterative", "--prune-rounds", "1000000", "--epochs", "1"],
     "--prune-rounds must be <= 1000, got 1000000; allowed: 1 to 1000"),
    (["prune", "--prune-schedule", "iterative", "--prune-rounds", "3", "--epochs", "2"],
     "--prune-rounds 3 is more than --epochs 2"),
    (["train", "--epochs", "0"], "--base-epochs must be >= 1"),
    (["sweep", "--strategies", "global_weight,,layer_grad"],
     "--strategies: empty item in 'global_weight,,layer_grad'"),
    (["sweep", "--prune-schedules", "iterative", "--epochs", "2", "--prune-rounds", "3"],
     "--prune-rounds 3 is more than --epochs 2"),
    (["tune", "--seeds", "-1"], "--seeds must all be >= 0, got -1"),
    (["report", "--experiment", "a,,b"], "--experiment: empty item in 'a,,b'"),
    (["prune", "--synthetic-shape", "3x100000x100000"], "allowed: at most 3,145,728"),
])
def test_the_issues_cases_are_refused_with_the_allowed_range(argv, part, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    line = fails([*argv, "--tracking-uri", uri], capsys)
    assert part in line
