"""Every option of every command arrives, with the same value, through every door.

Each option gets a valid value other than its default and goes in (a) through the CLI
parser, (b) through the MLproject entry point, as `mlflow run` builds the command (its own
code: a declared parameter substituted into the template, an undeclared `-P` appended as
``--name value`` with underscores) and (c) through a preset YAML (sweep and tune, for the
keys a preset holds). The parsed config must hold that value each time.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.projects.utils import load_project

from mlbench.cli import build_parser, findings, prune, report, sweep, train, tune
from mlbench.cli._args import dashed_flags
from mlbench.cli.mlproject import ROOT
from mlbench.errors import ConfigError
from mlbench.grid import Grid
from mlbench.options import Option, command_options, param_text, preset_keys
from tests.conftest import REPO

RESOLVE = {"train": train.resolve, "prune": prune.resolve, "sweep": lambda a: sweep.resolve(a)
           .flat(), "tune": lambda a: tune.resolve(a).flat(), "report": report.resolve,
           "findings": findings.resolve}
ENTRY = {e.command: e.name for e in ROOT}  # prune -> main, ...
GRID_KEYS = {f.name for f in dataclasses.fields(Grid)}
# Values for free-text options (the rest are derived from the option's type and bounds).
TEXT = {
    "dataset": "synthetic", "model": "mlp", "device": "cpu", "synthetic_shape": "1x8x8",
    "strategy": "layer_grad", "experiment": "elsewhere", "storage": "journal:/tmp/q.journal",
    "study_prefix": "mine", "filter": "params.seed = '1'", "strategies": "layer_grad,random",
    "compressions": "2,4", "seeds": "3,4", "prune_schedules": "oneshot,iterative",
    "data_dir": "/tmp/elsewhere",
}


def value_for(opt: Option, tmp_path: Path) -> Any:
    """A valid value of ``opt`` that is not its default (as the config will hold it)."""
    if opt.key in ("output",):
        return str(tmp_path / "out")
    if opt.key == "tracking_uri":
        return f"sqlite:///{tmp_path / 'other.db'}"
    if opt.key == "project":
        return str(tmp_path / "preset.yaml")
    if opt.kind == "bool":
        return not opt.default
    if "choices" in opt.bounds:
        return next(c for c in opt.bounds["choices"] if c != opt.default)
    if opt.kind in ("int", "float"):
        up = (opt.default or 0) + 1
        if up <= opt.bounds.get("le", up) and up < opt.bounds.get("lt", up + 1):
            return up
        return opt.default / 2
    return TEXT[opt.key]


def expected(opt: Option, value: Any) -> Any:
    """How the resolved config holds ``value`` (lists parsed into tuples)."""
    if opt.key in GRID_KEYS and isinstance(value, str):
        kind = {"compressions": float, "seeds": int}.get(opt.key, str)
        return tuple(kind(v) for v in value.split(","))
    if opt.key == "experiment" and opt.repeat:
        return (value,)
    return value


def cases() -> list[tuple[str, str]]:
    return [(c, o.key) for c in RESOLVE for o in command_options(c)]


def _preset(tmp_path: Path, extra: dict[str, Any] | None = None) -> str:
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump({"dataset": "synthetic", **(extra or {})}))
    return str(path)


def _resolve(command: str, argv: list[str]) -> dict[str, Any]:
    args = build_parser().parse_args(dashed_flags([command, *argv]))
    return RESOLVE[command](args)


def _base_argv(command: str, tmp_path: Path, key: str) -> list[str]:
    """What every call of ``command`` carries: a store in tmp and (sweep, tune) a preset."""
    argv = [] if command in ("report", "findings") or key == "tracking_uri" else [
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    if command in ("sweep", "tune") and key != "project":
        argv += ["--project", _preset(tmp_path)]
    return argv


# Options a command refuses at its only non-default value, in one line naming the option
# (tune: trials fine-tune the trained base; pruning at init trains with the base recipe).
REFUSED = {("tune", "prune_at"): "--prune-at init"}


@pytest.mark.parametrize(("command", "key"), cases())
def test_every_option_arrives_through_the_cli(command, key, tmp_path):
    opt = next(o for o in command_options(command) if o.key == key)
    value = value_for(opt, tmp_path)
    if key == "project":
        _preset(tmp_path)
    argv = [*_base_argv(command, tmp_path, key), opt.flag, param_text(value)]
    if (command, key) in REFUSED:
        with pytest.raises(ConfigError, match=REFUSED[command, key]):
            _resolve(command, argv)
        return
    assert _resolve(command, argv)[key] == expected(opt, value)


@pytest.mark.parametrize(("command", "key"), cases())
def test_every_option_arrives_through_its_mlproject_entry_point(command, key, tmp_path):
    """`mlflow run . -e <entry> -P <param>=<value>`, built by MLflow's own code."""
    opt = next(o for o in command_options(command) if o.key == key)
    value = value_for(opt, tmp_path)
    if key == "project":
        _preset(tmp_path)
    entry = load_project(str(REPO)).get_entry_point(ENTRY[command])
    params = {opt.param: param_text(value)}
    if command in ("sweep", "tune") and key != "project":
        params["project"] = _preset(tmp_path)
    if command not in ("report", "findings") and key != "tracking_uri":
        params["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"  # undeclared: -P
    if command in ("report", "findings") and key != "tracking_uri":
        params["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    words = shlex.split(entry.compute_command(params, storage_dir=None))
    assert words[:4] == ["python", "-m", "mlbench", command]
    if (command, key) in REFUSED:
        with pytest.raises(ConfigError, match=REFUSED[command, key]):
            _resolve(command, words[4:])
        return
    assert _resolve(command, words[4:])[key] == expected(opt, value), words


@pytest.mark.parametrize("command", ["sweep", "tune"])
def test_every_preset_key_arrives_through_a_preset(command, tmp_path):
    """Every key a preset may hold, through a preset, as the command resolves it."""
    options = {o.key: o for o in command_options(command)}
    keys = [k for k in [*preset_keys(), *sorted(GRID_KEYS)]
            if k in options and (command, k) not in REFUSED]
    assert {"prune_schedules", "data_dir", "download"} <= set(keys) or command == "tune"
    failures = []
    for key in keys:
        opt = options[key]
        value = value_for(opt, tmp_path)
        preset_value = expected(opt, value) if key in GRID_KEYS else value
        if isinstance(preset_value, tuple):
            preset_value = list(preset_value)
        path = _preset(tmp_path, {key: preset_value})
        got = _resolve(command, ["--project", path, "--tracking-uri",
                                 f"sqlite:///{tmp_path / 'mlflow.db'}"])[key]
        if got != expected(opt, value):
            failures.append(f"{key}: {got!r} != {expected(opt, value)!r}")
    assert failures == []


def test_the_sweep_takes_schedules_and_the_data_folder_from_every_door(tmp_path):
    """The options the issue named: --prune-schedules, and data_dir/download on sweep."""
    options = {o.key for o in command_options("sweep")}
    assert {"prune_schedules", "data_dir", "download"} <= options
    entry = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]["sweep"]
    assert {"prune_schedules", "data_dir", "download"} <= set(entry["parameters"])
    got = _resolve("sweep", ["--project", _preset(tmp_path), "--prune-schedules",
                             "oneshot,iterative", "--data_dir", "/d", "--download", "true",
                             "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert got["prune_schedules"] == ("oneshot", "iterative")
    assert got["data_dir"] == "/d" and got["download"] is True


def test_undeclared_parameters_arrive_with_underscores_and_are_read():
    assert dashed_flags(["--data_dir", "a_b", "--base_lr=0.1", "--x", "--filter",
                         "params.a_b = '1'"]) == [
        "--data-dir", "a_b", "--base-lr=0.1", "--x", "--filter", "params.a_b = '1'"]
