"""Sweeps: grid expansion, one base model per seed, presets, resume after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mlbench.cli import main
from mlbench.config import RunConfig
from mlbench.errors import ConfigError
from mlbench.presets import load_preset
from mlbench.sweep import Grid, SweepRun, item_of, parse_list
from mlbench.tuning._queue import DONE_STATE
from tests.conftest import (
    REPO,
    TINY,
    clean_env,
    free_port,
    start_mlflow_server,
    stop_mlflow_server,
)

SWEEP_TINY = {k: v for k, v in TINY.items() if k not in ("strategy", "compression")}


def sweep_argv(**grid: str) -> list[str]:
    argv = ["sweep"]
    for key, value in {**SWEEP_TINY, **grid}.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def sweep_study(uri: str) -> optuna.Study:
    """The one sweep study in the default storage: the journal beside ``uri``'s store."""
    folder = Path(uri[len("sqlite:///"):]).parent
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    (summary,) = storage.get_all_studies()
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def all_runs(uri: str, stage: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`mlbench.stage` = '{stage}'")


def test_grid_expands_every_cell_grouped_by_seed():
    grid = Grid(strategies=("global_weight", "random"), compressions=(1.0, 4.0), seeds=(0, 1))
    cells = grid.cells(RunConfig())
    assert [(c.seed, c.prune.strategy, c.prune.compression) for c in cells] == [
        (0, "global_weight", 1.0), (0, "global_weight", 4.0), (0, "random", 1.0),
        (0, "random", 4.0), (1, "global_weight", 1.0), (1, "global_weight", 4.0),
        (1, "random", 1.0), (1, "random", 4.0)]
    assert len({c.run_hash() for c in cells}) == 8
    assert len({c.base_hash() for c in cells}) == 2  # one base model per seed


def test_default_grid_is_the_papers():
    grid = Grid()
    assert grid.strategies == ("global_weight", "layer_weight", "global_grad", "layer_grad",
                               "random")
    assert grid.compressions == (1, 2, 4, 8, 16, 32) and grid.seeds == (0, 1, 2)


def test_list_parsing_names_the_bad_item():
    assert parse_list("1, 2,4", float, "--compressions") == (1.0, 2.0, 4.0)
    with pytest.raises(ConfigError, match="--seeds: expected an integer, got 'x'"):
        parse_list("0,x", int, "--seeds")
    with pytest.raises(ConfigError, match="unknown strategy 'magic'"):
        Grid(strategies=("magic",)).check()


def test_sweep_prunes_every_cell_from_one_base_model_per_seed(tracking_uri):
    argv = sweep_argv(strategies="global_weight,random", compressions="1,4", seeds="0,1")
    assert main([*argv, "--tracking-uri", tracking_uri]) == 0
    (sweep,) = all_runs(tracking_uri, "sweep")
    prunes = all_runs(tracking_uri, "prune")
    trains = all_runs(tracking_uri, "train")
    assert len(prunes) == 8 and len(trains) == 2
    assert {p.data.tags["mlflow.parentRunId"] for p in prunes} == {sweep.info.run_id}
    assert sorted(p.info.run_name for p in prunes) == sorted(
        f"{s}-c{c}-s{seed}" for s in ("global_weight", "random") for c in (1, 4)
        for seed in (0, 1))
    by_seed: dict[str, set[str]] = {}
    for p in prunes:
        by_seed.setdefault(p.data.params["seed"], set()).add(p.data.params["base_run_id"])
    assert all(len(ids) == 1 for ids in by_seed.values())
    assert by_seed["0"] != by_seed["1"]
    keys = {frozenset(p.data.metrics) for p in prunes}
    assert len(keys) == 1  # the same metric columns on every child
    dense = [p for p in prunes if p.data.params["compression"] == "1.0"]
    assert all(p.data.metrics["compression"] == 1.0 for p in dense)

    assert sweep.info.status == "FINISHED"
    # the queue: a journal beside the store; each trial names its run and each run its trial
    study = sweep_study(tracking_uri)
    trials = {t.number: t for t in study.get_trials() if t.state == DONE_STATE}
    assert len(trials) == 1 + 2 + 8  # the sweep run, a base model per seed, the cells
    assert all(t.values is None for t in trials.values())  # a queue: no objective value
    for run in prunes + trains:
        assert run.data.tags["mlbench.study"] == study.study_name
        trial = trials[int(run.data.tags["mlbench.trial_number"])]
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
    (opened,) = [t for t in trials.values()
                 if isinstance(item_of(t.user_attrs["mlbench.key"]), SweepRun)]
    assert opened.user_attrs["mlflow_run_id"] == sweep.info.run_id

    # started again with the same arguments: the same sweep run, no cell redone
    assert main([*argv, "--tracking-uri", tracking_uri]) == 0
    assert len(all_runs(tracking_uri, "sweep")) == 1
    assert len(all_runs(tracking_uri, "prune")) == 8


def wait_for(predicate, proc: subprocess.Popen, log: Path, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


@pytest.mark.slow
def test_kill_9_then_rerun_waits_for_the_grace_redoes_the_cell_and_never_twice(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [sys.executable, "-m", "mlbench", *sweep_argv(  # two cells: one killed, one not
        strategies="global_weight,random", compressions="2", seeds="0"),
        "--epochs", "60", "--tracking-uri", uri, "--grace", "3"]  # cells caught mid-run
    assert all_runs(uri, "prune") == []  # creates the store: two first users would race
    log = tmp_path / "sweep.log"
    proc = subprocess.Popen(argv, cwd=tmp_path, env=clean_env(uri), stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: any(r.info.status == "RUNNING" for r in all_runs(uri, "prune")), proc, log)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 mid-cell
    proc.wait()
    (interrupted,) = [r.info.run_id for r in all_runs(uri, "prune")
                      if r.info.status == "RUNNING"]

    done = subprocess.run(argv, cwd=tmp_path, env=clean_env(uri), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sweep done: all 4 items" in done.stdout
    prunes = all_runs(uri, "prune")
    finished = Counter(r.data.tags["mlbench.config_hash"] for r in prunes
                       if r.info.status == "FINISHED")
    assert len(finished) == 2 and set(finished.values()) == {1}  # every cell exactly once
    status = {r.info.run_id: r.info.status for r in prunes}
    assert status[interrupted] == "FAILED"  # never left looking finished or running
    (sweep,) = all_runs(uri, "sweep")
    assert sweep.info.status == "FINISHED"
    study = sweep_study(uri)
    assert [t for t in study.get_trials() if t.state == TrialState.FAIL]  # the dead try
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]


@pytest.mark.slow
def test_workers_n_survives_a_dead_child_and_redoes_its_cell(tmp_path):
    """`--workers 2`: kill -9 the spawned worker mid-cell; the sweep still ends, whole.

    Cells last seconds (250 epochs), longer than the spawned worker takes to start, so it
    holds one even on a quiet machine."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [sys.executable, "-m", "mlbench", *sweep_argv(
        strategies="global_weight,random", compressions="2,4", seeds="0"),
        "--epochs", "250", "--tracking-uri", uri, "--grace", "3", "--workers", "2"]
    assert all_runs(uri, "prune") == []  # creates the store: two first users would race
    log = tmp_path / "sweep.log"
    proc = subprocess.Popen(argv, cwd=tmp_path, env=clean_env(uri), stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)

    def child_cells() -> list:  # RUNNING cells of a worker other than the parent process
        return [r for r in all_runs(uri, "prune") if r.info.status == "RUNNING"
                and not r.data.tags["mlbench.worker"].endswith(f":{proc.pid}")]

    wait_for(lambda: child_cells(), proc, log)
    (held,) = child_cells()
    os.kill(int(held.data.tags["mlbench.worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    try:
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "sweep done: all 6 items" in log.read_text()
    prunes = all_runs(uri, "prune")
    finished = Counter(r.data.tags["mlbench.config_hash"] for r in prunes
                       if r.info.status == "FINISHED")
    assert len(finished) == 4 and set(finished.values()) == {1}  # every cell exactly once
    assert {r.info.run_id: r.info.status for r in prunes}[held.info.run_id] == "FAILED"
    assert finished[held.data.tags["mlbench.config_hash"]] == 1  # its cell redone


def test_presets_load_and_validate(tmp_path):
    for path in sorted((REPO / "projects").glob("*.yaml")):
        preset = load_preset(path)
        assert {"dataset", "model"} <= set(preset)
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: digits\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'learning_rate'"):
        load_preset(bad)
    bad.write_text("dataset: digits\nepochs: many\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: --epochs must be an integer"):
        load_preset(bad)


def test_options_override_the_preset(tmp_path, tracking_uri, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text("dataset: synthetic\nmodel: mlp\nstrategies: [random]\n"
                      "compressions: [2]\nseeds: [5]\nepochs: 9\n")
    argv = sweep_argv()
    argv = [a for a in argv if a not in ("--model", "lenet")]
    # empty grid options (the MLproject's defaults) mean "the preset's"
    empty = ["--strategies", "", "--compressions", "", "--seeds", ""]
    assert main([*argv, *empty, "--project", str(preset), "--tracking-uri", tracking_uri]) == 0
    (run,) = all_runs(tracking_uri, "prune")
    assert run.info.run_name == "random-c2-s5"  # grid from the preset
    assert run.data.params["model"] == "mlp"  # not overridden: from the preset
    assert run.data.params["epochs"] == "1"  # given on the command line: overrides 9


def test_the_default_preset_is_used_by_the_sweep_entry_point():
    import yaml

    project = yaml.safe_load((REPO / "MLproject").read_text())
    sweep = project["entry_points"]["sweep"]
    assert sweep["parameters"]["project"]["default"] == "projects/digits-lenet.yaml"
    for key in ("strategies", "compressions", "seeds", "prune_schedules"):
        assert f"--{key.replace('_', '-')} {{{key}}}" in sweep["command"]
    assert Path(REPO / sweep["parameters"]["project"]["default"]).exists()


@pytest.mark.slow
def test_two_machines_with_two_workers_split_one_grid_on_a_server(mlflow_server, tmp_path):
    """Two sweep commands (as on two machines), two workers each, one tracking server."""
    argv = [sys.executable, "-m", "mlbench", *sweep_argv(
        strategies="global_weight,layer_weight,global_grad,random", compressions="2,4",
        seeds="0"), "--workers", "2", "--tracking-uri", mlflow_server]
    procs = [subprocess.Popen(argv, cwd=tmp_path, env=clean_env(mlflow_server),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-4000:] for o in outs]
    prunes = [r for r in all_runs(mlflow_server, "prune") if r.info.status == "FINISHED"]
    hashes = Counter(r.data.tags["mlbench.config_hash"] for r in prunes)
    assert len(hashes) == 8 and set(hashes.values()) == {1}  # no cell done twice
    assert len({r.data.tags["mlbench.worker"] for r in prunes}) >= 2  # the work was shared
    assert len({r.data.params["base_run_id"] for r in prunes}) == 1  # one base model
    (sweep,) = all_runs(mlflow_server, "sweep")  # both machines joined one sweep run
    assert {r.data.tags["mlflow.parentRunId"] for r in prunes} == {sweep.info.run_id}
    assert len([r for r in all_runs(mlflow_server, "train") if r.info.status == "FINISHED"]) == 1


@pytest.mark.slow
def test_a_tracking_server_stopped_and_restarted_mid_run_leaves_every_run_finished(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    argv = [sys.executable, "-m", "mlbench", *sweep_argv(
        strategies="global_weight", compressions="2,4", seeds="0"),
        "--epochs", "12", "--tracking-uri", uri]
    log = tmp_path / "sweep.log"
    proc = subprocess.Popen(argv, cwd=tmp_path, env=clean_env(uri), stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    try:  # mid-run: the base model's run or a cell's (a quiet machine is quick)
        wait_for(lambda: any(r.info.status == "RUNNING" for stage in ("train", "prune")
                             for r in all_runs(uri, stage)), proc, log)
        stop_mlflow_server(server)  # the server goes away mid-run ...
        time.sleep(10)
        server = start_mlflow_server(tmp_path, port)  # ... and comes back on the same store
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
        text = log.read_text()
        # one line when it goes, one when it is back (a restarting server may fail a
        # first request again: each such spell is reported the same way, once)
        assert 1 <= text.count("is failing") == text.count("is back after")
        assert "Traceback" not in text
        prunes = all_runs(uri, "prune")
        assert sorted(r.info.status for r in prunes) == ["FINISHED", "FINISHED"]
        client = MlflowClient(uri)
        for run in prunes:  # every epoch reached the server
            assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc1")] \
                == list(range(1, 13))
            assert "acc1" in run.data.metrics
    finally:
        proc.kill()
        stop_mlflow_server(server)


def test_a_sweep_runs_every_kind_and_schedule_that_prune_runs(tracking_uri, tmp_path):
    """Masks, 2:4 and channels crossed with one-shot and iterative: every pair a kind can
    run is a cell of one sweep run (channel removal one-shot only); each cell's trial
    holds its typed item."""
    from mlbench.config import TrackingConfig
    from mlbench.sweep import CellItem, run_sweep

    cfg = RunConfig.from_flat({**SWEEP_TINY, "epochs": 2, "prune_rounds": 2})
    grid = Grid(strategies=("global_weight", "semi_2_4", "global_l1_channel"),
                compressions=(2.0,), seeds=(0,), prune_schedules=("oneshot", "iterative"))
    done = run_sweep(cfg, grid, TrackingConfig(tracking_uri=tracking_uri),
                     storage=f"sqlite:///{tmp_path / 'q.db'}")
    assert done.total == 1 + 1 + 5
    prunes = all_runs(tracking_uri, "prune")
    pairs = sorted((p.data.params["strategy"], p.data.params["prune_schedule"]) for p in prunes)
    assert pairs == [("global_l1_channel", "oneshot"), ("global_weight", "iterative"),
                     ("global_weight", "oneshot"), ("semi_2_4", "iterative"),
                     ("semi_2_4", "oneshot")]
    study = optuna.load_study(study_name=done.study, storage=f"sqlite:///{tmp_path / 'q.db'}")
    assert study.user_attrs["mlbench.study_kind"] == "queue"
    cells = [item_of(t.user_attrs["mlbench.key"]) for t in study.trials]
    assert sorted((c.strategy, c.schedule) for c in cells if isinstance(c, CellItem)) == pairs
