"""Bad input: one clear line on stderr, exit code 2, before any work; MLproject in sync."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlbench.cli import main
from mlbench.config import RunConfig
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


def _preset(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _read_only(tmp_path: Path) -> Path:
    """A folder no file can be made in (root may write anywhere chmod allows: use /sys)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


# Every bad input: (argv, expected part of the one line). `{tmp}`, `{ro}`, `{uri}` and
# `{preset:TEXT}` are filled in per test; `{uri}` is the test's own sqlite store.
BAD_INPUTS: list[tuple[str, str]] = [
    ("prune --strategy magic", "unknown strategy 'magic'; choose one of: global_weight, "
     "layer_weight, global_grad, layer_grad, random"),
    ("prune --model nope", "unknown model 'nope'; choose one of: resnet20"),
    ("prune --dataset nope", "unknown dataset 'nope'; choose one of: digits"),
    ("prune --compression 0.5", "--compression must be >= 1, got 0.5"),
    ("prune --compression 100", "--compression 100 is out of reach for this model"),
    ("prune --compression nan", "argument --compression: expected a finite number, got 'nan'"),
    ("prune --lr abc", "argument --lr: expected a number, got 'abc'"),
    ("prune --lr -1", "--lr must be > 0, got -1.0"),
    ("prune --epochs -2", "--epochs must be >= 0, got -2"),
    ("prune --epochs 1.5", "argument --epochs: expected an integer, got '1.5'"),
    ("prune --base-batch-size 0", "--base-batch-size must be >= 1, got 0"),
    ("prune --optimizer rmsprop", "--optimizer must be one of sgd, adam, adamw"),
    ("prune --schedule linear", "--schedule must be one of constant, step, cosine"),
    ("prune --augment maybe", "argument --augment: expected true or false, got 'maybe'"),
    ("prune --device tpu", "--device must be one of auto, cpu, cuda, mps"),
    ("prune --synthetic-shape 3x32", "--synthetic-shape must look like 3x32x32"),
    ("prune --tracking-uri htp:/x", "--tracking-uri htp:/x: not a URI"),
    ("prune --tracking-uri htp://x", "--tracking-uri htp://x: unknown scheme"),
    ("prune --tracking-uri sqlite:///{ro}/m.db", "cannot write in {ro}"),
    ("prune --experiment=", "--experiment must name an experiment, got ''"),
    ("prune --dataset cifar10 --data-dir {tmp}/nowhere", "{tmp}/nowhere"),
    ("prune --dataset cifar10 --data-dir {tmp}/nowhere", "--download"),
    ("prune --tracking-uri http://127.0.0.1:{port}", "no MLflow server answers there"),
    ("train --model nope", "unknown model 'nope'"),
    ("train --epochs -1", "--base-epochs must be >= 0, got -1"),
    ("sweep --compressions nan", "--compressions: expected a finite number, got 'nan'"),
    ("sweep --compressions 0.5", "--compressions must all be finite and >= 1, got 0.5"),
    ("sweep --seeds 1.5", "--seeds: expected an integer, got '1.5'"),
    ("sweep --seeds=-1", "--seeds must all be >= 0, got -1"),
    ("sweep --strategies magic", "unknown strategy 'magic'"),
    ("sweep --workers 0", "--workers must be >= 1, got 0"),
    ("sweep --experiment=", "--experiment must name an experiment, got ''"),
    ("sweep --project {tmp}/none.yaml", "cannot read it"),
    ("sweep --project {preset:epochs: .inf}", "--epochs must be an integer, got inf"),
    ("sweep --project {preset:seed: .nan}", "--seed must be an integer, got nan"),
    ("sweep --project {preset:compressions: [2, .nan]}",
     "--compressions: expected a finite number, got nan"),
    ("sweep --project {preset:compressions: 5}", "--compressions: expected a list"),
    ("sweep --project {preset:1: 2}", "unknown key 1; allowed keys:"),
    ("sweep --project {preset:lr: [}", "not valid YAML"),
    ("sweep --project {preset:- 1}", "a preset is a mapping of option names to values"),
    ("sweep --project {preset:magic: 1}", "unknown key 'magic'"),
    ("sweep --project {preset:\\xff\\xfe}", "not UTF-8 text"),
    ("tune --trials 0", "--trials must be >= 1, got 0"),
    ("tune --strategies magic", "unknown strategy 'magic'"),
    ("tune --project {preset:epochs: .inf}", "--epochs must be an integer, got inf"),
    ("report --output {ro}/out", "--output {ro}/out: cannot write in {ro}"),
    ("report --output {tmp}/a-file", "--output {tmp}/a-file: is a file"),
    ("report --experiment nope", "unknown experiment 'nope'"),
    ("report --tracking-uri htp:/x", "--tracking-uri htp:/x: not a URI"),
    ("report --layers-at -1", "--layers-at must be >= 0"),
]
_NEEDS_TINY = ("prune", "train", "sweep", "tune")


_PORT = free_port()  # nothing listens there


def _fill(text: str, tmp_path: Path, ro: Path, uri: str) -> str:
    text = text.replace("{tmp}", str(tmp_path)).replace("{ro}", str(ro))
    return text.replace("{uri}", uri).replace("{port}", str(_PORT))


def _argv(case: str, tmp_path: Path, ro: Path, uri: str) -> list[str]:
    if "{preset:" in case:
        head, _, body = case.partition("{preset:")
        raw = body[:-1].encode().decode("unicode_escape").encode("latin-1")
        case = head + _preset(tmp_path, "bad", raw)
    argv = _fill(case, tmp_path, ro, uri).split(" ")
    command = argv[0]
    if command in _NEEDS_TINY and "--tracking-uri" not in argv:
        argv += ["--tracking-uri", uri]
    if command == "report" and "--tracking-uri" not in argv:
        argv += ["--tracking-uri", uri]
    if command in _NEEDS_TINY and "--project" not in argv:
        tiny = tiny_argv() if command == "prune" else _tiny_without_grid(command)
        argv = [command, *tiny, *argv[1:]]
    return argv


def _tiny_without_grid(command: str) -> list[str]:
    drop = {"sweep": ("compression",), "tune": (),
            "train": ("compression", "base_epochs", "base_lr", "base_batch_size")}[command]
    return tiny_argv(**{k: None for k in drop})


def test_every_bad_input_is_one_line_exit_2_and_leaves_nothing_running(tmp_path, capsys):
    """The whole table in one process, through cli.main: one line, exit 2, no run left."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # the store exists: `report` reads it
    (tmp_path / "a-file").write_text("x")
    ro = _read_only(tmp_path)
    capsys.readouterr()
    failures = []
    for case, expected in BAD_INPUTS:
        argv = _argv(case, tmp_path, ro, uri)
        try:
            line = fails(argv, capsys)
        except AssertionError as exc:
            failures.append(f"{case}: {exc}")
            continue
        want = _fill(expected, tmp_path, ro, uri)
        if want not in line:
            failures.append(f"{case}: {line!r} lacks {want!r}")
    assert failures == [], "\n".join(failures)
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(ids) == []  # nothing started, so nothing left RUNNING


def test_bad_input_from_a_real_process_has_no_traceback(tracking_uri):
    proc = subprocess.run(
        [sys.executable, "-m", "mlbench", "prune", "--strategy", "magic",
         "--tracking-uri", tracking_uri],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 2
    from mlbench.catalog import names
    from mlbench.names import strategy_rank

    listed = ", ".join(sorted(names("strategy"), key=strategy_rank))
    assert listed.startswith("global_weight, layer_weight, global_grad, layer_grad, random, ")
    assert proc.stderr.strip().splitlines() == [
        f"mlbench prune: error: unknown strategy 'magic'; choose one of: {listed}"
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


def test_the_cli_keeps_glibc_from_trimming_activations_away():
    code = ("import ctypes, mlbench.cli, sys; sys.argv = ['mlbench', 'list'];"
            "from mlbench._malloc import steady_malloc; print(steady_malloc())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip() == ("True" if sys.platform.startswith("linux") else "False")
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "MLBENCH_STEADY_MALLOC": "0"})
    assert off.stdout.strip() == "False"
