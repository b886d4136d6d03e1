"""One option schema: parsers, MLproject files, presets and params all come from it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from mlbench import catalog
from mlbench.cli import build_parser
from mlbench.cli.mlproject import FILES, render
from mlbench.cli.mlproject import main as write_mlproject
from mlbench.config import PruneConfig, RunConfig
from mlbench.options import COMMANDS, command_options, param_text, preset_keys
from tests.conftest import REPO

HEAVY = ("torch", "torchvision", "torch._dynamo", "mlflow", "optuna", "pandas", "matplotlib")


def _subparser(command: str):
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return action.choices[command]


def test_both_mlproject_files_are_the_generated_ones():
    for kind, path in FILES.items():
        assert path.read_text() == render(kind), (
            f"{path} is stale: run `python -m mlbench.cli.mlproject`")
    assert write_mlproject(["--check"]) == 0


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "list"])
def test_every_schema_option_is_an_option_of_its_command(command):
    options = _subparser(command)._option_string_actions
    for opt in command_options(command):
        assert opt.flag in options, opt.flag
        assert options[opt.flag].dest == opt.key


def test_a_new_field_appears_in_every_parser_mlproject_and_preset(monkeypatch):
    """Adding one field to one dataclass is all it takes (helper of future options)."""
    import mlbench.options as options

    @dataclasses.dataclass(frozen=True)
    class Extended(PruneConfig):
        rounds: int = dataclasses.field(default=1, metadata={"help": "prune rounds", "ge": 1})

    monkeypatch.setattr(options, "PruneConfig", Extended)
    for command in ("prune", "sweep", "tune"):
        assert "--rounds" in {o.flag for o in command_options(command)}
    main = yaml.safe_load(render("root"))["entry_points"]["main"]
    assert main["parameters"]["rounds"] == {"type": "float", "default": "1"}
    assert "--rounds {rounds}" in main["command"]


def test_mlproject_defaults_are_the_cli_defaults_as_params_text():
    entry = yaml.safe_load(FILES["root"].read_text())["entry_points"]["main"]
    flat = RunConfig().flat()
    assert set(entry["parameters"]) == set(flat) == set(preset_keys())
    for key, spec in entry["parameters"].items():
        assert spec["default"] == param_text(flat[key]), key


def test_param_text_is_what_mlflow_run_writes():
    assert [param_text(v) for v in (True, False, 8.0, 0.0005, 1e-5, 3, "x", None)] == [
        "true", "false", "8", "0.0005", "1e-05", "3", "x", ""]


@pytest.mark.parametrize("kind", ["dataset", "model", "strategy", "channel"])
def test_the_catalog_reads_exactly_the_registered_names(kind):
    from mlbench.calibrated._names import STRATEGY_NAMES
    from mlbench.data import dataset_names
    from mlbench.models import model_names
    from mlbench.strategies import strategy_names
    from mlbench.structured import channel_strategy_names

    registered = {"dataset": dataset_names, "model": model_names,
                  "strategy": lambda: [*strategy_names(), *channel_strategy_names(),
                                       *STRATEGY_NAMES],
                  "channel": channel_strategy_names}[kind]()
    assert set(catalog.names(kind)) == set(registered)


def test_the_catalog_reads_torchvisions_classifiers():
    import torchvision

    assert catalog.torchvision_models() == set(
        torchvision.models.list_models(module=torchvision.models))


def _loaded_after(argv: list[str]) -> tuple[int, list[str]]:
    code = (
        "import sys\nfrom mlbench.cli import main\n"
        f"try:\n    code = main({argv!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print(code, [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    exit_code, loaded = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    return int(exit_code), eval(loaded)  # noqa: S307 - our own printed list


@pytest.mark.parametrize("argv", [
    ["--help"], ["prune", "--help"], ["sweep", "--help"], ["tune", "--help"],
    ["report", "--help"], ["train", "--help"], ["list"],
    ["prune", "--strategy", "magic"], ["prune", "--model", "nope"],
    ["prune", "--lr", "-1"], ["sweep", "--compressions", "0.5"],
    ["sweep", "--project", "projects/none.yaml"],
])
def test_help_list_and_bad_input_load_nothing_heavy(argv):
    code, loaded = _loaded_after(argv)
    assert code in (0, 2)
    assert loaded == []


def test_the_pipeline_loads_no_dynamo_optuna_or_matplotlib():
    code = ("import sys, mlbench.recipe, mlbench.runs, mlbench.grid\n"
            "print([m for m in ('torch._dynamo', 'torchvision', 'optuna', 'matplotlib')"
            " if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr[-2000:]


def test_prune_reads_its_data_before_it_loads_mlflow():
    """mlflow (and pandas with it) loads when a train or prune run starts, after prepare()
    read the data."""
    code = ("import sys\nfrom mlbench.config import RunConfig\n"
            "import mlbench.runs\nfrom mlbench.recipe import prepare\n"
            "setup = prepare(RunConfig())\n"
            "print(len(setup.splits.train), [m for m in ('mlflow', 'pandas', 'optuna', 'sklearn')"
            " if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    samples, loaded = proc.stdout.strip().split(" ", 1)
    assert int(samples) > 0 and loaded == "[]", proc.stderr[-2000:]


def test_the_report_loads_no_torch():
    """The report reads runs and draws: torch (2 s of its start) is not among its needs."""
    code = ("import sys, mlbench.report.build, mlbench.cli.report\n"
            "print([m for m in ('torch', 'torchvision', 'optuna') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr[-2000:]
