"""Bad input: one clear line on stderr, exit code 2, before any work; MLproject in sync."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml
from mlflow import MlflowClient

from mlbench.cli import build_parser, main
from mlbench.config import BASE_DEFAULTS, RunConfig
from mlbench.strategies import strategy_names
from mlbench.structured import channel_strategy_names
from tests.conftest import REPO, free_port, tiny_argv


def fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process; assert exit code 2 and one stderr line; return it."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def no_runs(uri: str) -> bool:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return not client.search_runs(ids)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--strategy", "magic", "unknown strategy 'magic'; choose one of: global_weight, "
         "layer_weight, global_grad, layer_grad, random"),
        ("--model", "nope", "unknown model 'nope'; choose one of: lenet, mlp, resnet20"),
        ("--dataset", "nope", "unknown dataset 'nope'; choose one of: digits"),
        ("--compression", "0.5", "--compression must be >= 1, got 0.5"),
        ("--compression", "100", "--compression 100 is out of reach for this model"),
        ("--lr", "abc", "argument --lr: expected a number, got 'abc'"),
        ("--lr", "-1", "--lr must be > 0, got -1.0"),
        ("--epochs", "-2", "--epochs must be >= 0, got -2"),
        ("--epochs", "1.5", "argument --epochs: expected an integer, got '1.5'"),
        ("--base-batch-size", "0", "--base-batch-size must be >= 1, got 0"),
        ("--optimizer", "rmsprop", "--optimizer must be one of sgd, adam, adamw"),
        ("--schedule", "linear", "--schedule must be one of constant, step, cosine"),
        ("--augment", "maybe", "argument --augment: expected true or false, got 'maybe'"),
        ("--device", "tpu", "--device must be one of auto, cpu, cuda, mps"),
        ("--synthetic-shape", "3x32", "--synthetic-shape must look like 3x32x32"),
    ],
)
def test_bad_values_get_one_line_and_exit_2(option, value, expected, tracking_uri, capsys):
    line = fails(["prune", *tiny_argv(), option, value, "--tracking-uri", tracking_uri], capsys)
    assert expected in line
    assert no_runs(tracking_uri)


def test_missing_data_directory_says_where_and_mentions_download(tmp_path, tracking_uri, capsys):
    missing = tmp_path / "nowhere"
    line = fails(["prune", "--dataset", "cifar10", "--data-dir", str(missing),
                  "--tracking-uri", tracking_uri], capsys)
    assert str(missing) in line and "--download" in line
    assert no_runs(tracking_uri)


def test_unreachable_tracking_server_fails_fast(capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    line = fails(["prune", *tiny_argv(), "--tracking-uri", uri], capsys)
    assert uri in line and "mlflow server" in line
    assert time.monotonic() - start < 30


def test_bad_input_from_a_real_process_has_no_traceback(tracking_uri):
    proc = subprocess.run(
        [sys.executable, "-m", "mlbench", "prune", "--strategy", "magic",
         "--tracking-uri", tracking_uri],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2
    names = [*strategy_names(), *channel_strategy_names()]
    assert names[:5] == ["global_weight", "layer_weight", "global_grad", "layer_grad", "random"]
    assert proc.stderr.strip().splitlines() == [
        f"mlbench prune: error: unknown strategy 'magic'; choose one of: {', '.join(names)}"
    ]


def test_help_lists_every_option():
    proc = subprocess.run([sys.executable, "-m", "mlbench", "prune", "--help"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0
    for key in RunConfig().flat():
        assert "--" + key.replace("_", "-") in proc.stdout
    assert "--tracking-uri" in proc.stdout and "--experiment" in proc.stdout


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "layer_grad" in out and "resnet56" in out and "cifar100" in out


def test_mlproject_parameters_are_the_cli_options_with_the_same_defaults():
    project = yaml.safe_load((REPO / "MLproject").read_text())
    main_params = project["entry_points"]["main"]["parameters"]
    flat = RunConfig().flat()
    assert set(main_params) == set(flat)
    for key, spec in main_params.items():
        assert str(spec["default"]).lower() == str(flat[key]).lower(), key
        assert f"--{key.replace('_', '-')} {{{key}}}" in project["entry_points"]["main"]["command"]
    train_params = project["entry_points"]["train"]["parameters"]
    for key in ("epochs", "lr", "batch_size", "optimizer", "schedule"):
        assert str(train_params[key]["default"]) == str(getattr(BASE_DEFAULTS, key))
    for key in ("dataset", "model", "seed", "data_dir"):
        assert key in train_params


def test_mlproject_tune_parameters_are_the_tune_options_with_the_same_defaults():
    from mlbench.config import PruneConfig
    from mlbench.tuning import DEFAULT_TRIALS, TuneConfig

    entry = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]["tune"]
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["tune"]
    options = sub._option_string_actions
    cli_defaults = {"compression": PruneConfig().compression, "trials": DEFAULT_TRIALS,
                    "seed": RunConfig().seed, "study_prefix": "mlbench",
                    "project": "projects/digits-lenet.yaml"}
    assert TuneConfig.__dataclass_fields__["study_prefix"].default == "mlbench"
    for key, spec in entry["parameters"].items():
        flag = f"--{key.replace('_', '-')}"
        assert flag in options, key
        assert f"{flag} {{{key}}}" in entry["command"], key
        default = spec["default"]
        if default == "":  # empty: "not given", so the preset's value or the CLI's default
            continue
        assert str(default) == str(cli_defaults[key]), key
    for key in ("strategies", "compression", "trials", "storage", "study_prefix", "seeds",
                "dataset", "model", "seed"):
        assert key in entry["parameters"]


def test_the_cli_keeps_glibc_from_trimming_activations_away():
    code = ("import ctypes, mlbench.cli, sys; sys.argv = ['mlbench', 'list'];"
            "from mlbench._malloc import steady_malloc; print(steady_malloc())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip() == ("True" if sys.platform.startswith("linux") else "False")
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "MLBENCH_STEADY_MALLOC": "0"})
    assert off.stdout.strip() == "False"


def test_mlproject_report_parameters_are_the_report_options():
    from mlbench.cli import build_parser
    from mlbench.report.cli import DEFAULTS

    entry = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]["report"]
    assert set(entry["parameters"]) == set(DEFAULTS)
    for key, spec in entry["parameters"].items():
        assert str(spec["default"]).lower() == str(DEFAULTS[key]).lower(), key
        assert f"--{key.replace('_', '-')} {{{key}}}" in entry["command"]
    args = build_parser().parse_args(["report"])
    for key, default in DEFAULTS.items():
        assert getattr(args, key) in (default, None), key  # --experiment: None = "mlbench"
    given = build_parser().parse_args(["report", "--experiment", "a,b", "--experiment", "c"])
    assert given.experiment == ["a,b", "c"]
