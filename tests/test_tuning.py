"""Fair tuning: the objective, equal budgets, val only, many workers, resume, bad input."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mlbench.cli import main
from mlbench.config import RunConfig, TrackingConfig
from mlbench.errors import ConfigError
from mlbench.names import prune_run_name
from mlbench.options import param_text
from mlbench.recipe import load_base, prepare
from mlbench.runs import obtain_base
from mlbench.search_space import default_search_space, parse_search_space
from mlbench.tracking import Tracker
from mlbench.tuning import (
    Objective,
    TuneConfig,
    open_storage,
    parse_storage,
    tune_strategy,
)
from tests.conftest import TINY, clean_env, free_port

SPACE = {"lr": {"low": 0.01, "high": 0.3, "log": True}, "epochs": {"low": 1, "high": 3},
         "momentum": {"low": 0.5, "high": 0.95}, "batch_size": [16, 32]}
TUNE_TINY = {k: v for k, v in TINY.items() if k not in ("epochs", "batch_size")}


def preset(tmp_path: Path, space: object = SPACE, **extra: object) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TUNE_TINY, "seeds": [0], "search_space": space, **extra}))
    return path


def tune_argv(tmp_path: Path, *more: str, space: object = SPACE) -> list[str]:
    return ["tune", "--project", str(preset(tmp_path, space)),
            "--storage", f"sqlite:///{tmp_path / 'optuna.db'}",
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *more]


def runs(uri: str, stage: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`mlbench.stage` = '{stage}'")


def tiny_setup(tracking_uri: str, strategy: str = "global_weight"):
    cfg = RunConfig.from_flat({**TUNE_TINY, "strategy": strategy})
    setup = prepare(cfg)
    tracker = Tracker(TrackingConfig(tracking_uri=tracking_uri))
    load_base(setup, tracker, obtain_base(setup, tracker))
    state = {k: v.clone() for k, v in setup.model.state_dict().items()}
    return setup, tracker, state


# -- the search space -------------------------------------------------------------------


def test_search_space_is_parsed_checked_and_hashed():
    space = parse_search_space(SPACE)
    assert space.names() == ["batch_size", "epochs", "lr", "momentum"]
    assert space.hash() == parse_search_space(dict(reversed(SPACE.items()))).hash()
    assert space.epochs_cap(RunConfig().finetune) == 3
    default = default_search_space(RunConfig().finetune)
    assert {"lr", "weight_decay", "momentum", "schedule", "epochs", "batch_size"} == set(
        default.names())
    assert default.epochs_cap(RunConfig().finetune) == RunConfig().finetune.epochs


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "name at least one"),
    (None, "name at least one"),
    ({"learning_rate": [0.1]}, "unknown option 'learning_rate'"),
    ({"lr": {"low": 0.3, "high": 0.1}}, "low 0.3 is above high 0.1"),
    ({"lr": {"low": 0, "high": 0.1}}, "--lr must be > 0"),
    ({"lr": {"low": 0.1}}, "a range needs low and high"),
    ({"momentum": {"low": 0.5, "high": 1.5}}, "--momentum must be < 1"),
    ({"schedule": ["cosine", "linear"]}, "--schedule must be one of constant, step, cosine"),
    ({"schedule": {"low": 1, "high": 2}}, "expected a list of choices"),
    ({"batch_size": []}, "the list of choices is empty"),
    ({"epochs": {"low": 1.5, "high": 3}}, "--epochs must be an integer"),
])
def test_bad_search_spaces_name_the_problem(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_search_space(raw)


def test_storage_urls_are_made_absolute_and_unknown_schemes_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = parse_storage("")  # the journal beside the MLflow store (here: ./mlflow.db)
    assert (default.kind, default.url) == ("journal", str(tmp_path / "optuna.journal"))
    beside = parse_storage("", f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    assert beside.url == str(tmp_path / "runs" / "optuna.journal")
    assert parse_storage("sqlite:///sub/s.db").url == f"sqlite:///{tmp_path / 'sub/s.db'}"
    journal = parse_storage("journal:studies.log")
    assert (journal.kind, journal.url) == ("journal", str(tmp_path / "studies.log"))
    pg = parse_storage("postgresql://bob:secret@db.example:5432/optuna")
    assert "secret" not in pg.display and pg.url.endswith("@db.example:5432/optuna")
    with pytest.raises(ConfigError, match="unknown storage scheme 'redis'"):
        parse_storage("redis://localhost:6379")


# -- the objective ------------------------------------------------------------------------


def test_objective_runs_a_fixed_trial_without_a_study(tracking_uri):
    setup, tracker, state = tiny_setup(tracking_uri)
    space = parse_search_space(SPACE)
    objective = Objective(setup, tracker, state, space, "fixed-study")
    params = {"lr": 0.1, "epochs": 2, "momentum": 0.9, "batch_size": 32}
    value = objective(optuna.trial.FixedTrial(params, number=7))
    again = objective(optuna.trial.FixedTrial(params, number=8))
    assert 0.0 <= value <= 1.0 and value == again  # base weights restored: same numbers
    (run, _) = sorted(runs(tracking_uri, "trial"), key=lambda r: r.info.start_time)
    assert run.info.status == "FINISHED" and run.info.run_name == "global_weight-c4-s0-t7"
    assert run.data.tags["mlbench.trial_number"] == "7"
    assert run.data.tags["mlbench.study"] == "fixed-study"
    assert run.data.tags["mlbench.trial_state"] == "COMPLETE"
    assert {k: run.data.params[k] for k in params} == {k: str(v) for k, v in params.items()}
    curve = MlflowClient(tracking_uri).get_metric_history(run.info.run_id, "val_acc1")
    assert [m.step for m in curve] == [1, 2] and curve[-1].value == value


class Untouchable:
    """A split that fails whatever touches it: the test split during tuning."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the test split was touched ({name})")

    def __len__(self) -> int:
        raise AssertionError("the test split was touched (len)")


def test_tuning_never_touches_the_test_split(tracking_uri, tmp_path):
    setup, tracker, state = tiny_setup(tracking_uri)
    setup = dataclasses.replace(setup, splits=dataclasses.replace(setup.splits,
                                                                  test=Untouchable()))
    spec = parse_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    tune = TuneConfig(space=parse_search_space(SPACE), strategies=("global_weight",), trials=4)
    row = tune_strategy(setup, tracker, state, tune, open_storage(spec), spec)
    assert row["trials_complete"] + row["trials_pruned"] == 4 and row["trials_failed"] == 0
    study = optuna.load_study(study_name=row["study"], storage=spec.url)
    assert len(study.trials) == 4
    assert all(t.intermediate_values for t in study.trials)  # the pruner saw val every epoch


# -- the tune command ---------------------------------------------------------------------


def test_tune_runs_every_kind_and_schedule_with_the_default_recipe_first(tmp_path, capsys):
    """A channel strategy (one-shot) and an iterative schedule: the same budget, the
    default recipe as trial 0, the objective named, and a tuned run on test each."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(tune_argv(tmp_path, "--strategies", "global_l1_channel", "--trials", "2",
                          "--compression", "1.5")) == 0
    assert main(tune_argv(tmp_path, "--strategies", "layer_weight", "--trials", "2",
                          "--prune-schedule", "iterative", "--prune-rounds", "2")) == 0
    tuned = {r.data.params["strategy"]: r for r in runs(uri, "prune")}
    assert set(tuned) == {"global_l1_channel", "layer_weight"}
    assert tuned["layer_weight"].data.params["prune_schedule"] == "iterative"
    assert all(r.data.tags["mlbench.tuned"] == "true" for r in tuned.values())
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    for tune in runs(uri, "tune"):
        study = optuna.load_study(study_name=tune.data.tags["mlbench.study"], storage=storage)
        assert study.metric_names == ["val_acc1"]
        assert study.user_attrs["mlbench.study_kind"] == "tuning"
        finished = [t for t in study.trials if t.state in (TrialState.COMPLETE,
                                                           TrialState.PRUNED)]
        assert len(finished) == 2
        first = study.trials[0]
        assert first.user_attrs["mlbench.default_recipe"] is True
        assert first.params["lr"] == 0.03 and first.params["momentum"] == 0.9  # the recipe's
        assert first.params["epochs"] == 3  # the recipe's 5, within the space's cap of 3
    assert "global_l1_channel" in capsys.readouterr().out


def test_a_rerun_with_another_budget_extends_the_study_or_refuses_in_one_line(tmp_path,
                                                                             capsys):
    argv = tune_argv(tmp_path, "--strategies", "global_weight",
                     space={"lr": {"low": 0.01, "high": 0.3, "log": True},
                            "epochs": {"low": 1, "high": 1}})
    assert main([*argv, "--trials", "2"]) == 0
    capsys.readouterr()
    assert main([*argv, "--trials", "3"]) == 0
    out, err = capsys.readouterr()
    assert "extending its budget from 2 to 3 trials" in out and "warning" not in err
    study = optuna.load_study(study_name=optuna.get_all_study_names(
        f"sqlite:///{tmp_path / 'optuna.db'}")[0], storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert study.user_attrs["mlbench.study_kind"] in ("tuning", "queue")
    try:
        code = main([*argv, "--trials", "2"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--trials 2 is below the 3 trials study" in err[0]


def test_every_strategy_gets_the_same_budget_space_and_sampler(tmp_path, capsys):
    strategies = "global_weight,layer_grad"
    assert main(tune_argv(tmp_path, "--strategies", strategies, "--trials", "5")) == 0
    out = capsys.readouterr().out
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    tunes = {r.data.params["strategy"]: r for r in runs(uri, "tune")}
    assert set(tunes) == {"global_weight", "layer_grad"}
    studies = {}
    for strategy, tune in tunes.items():
        tags = tune.data.tags
        assert tags["mlbench.storage"] == f"sqlite:///{tmp_path / 'optuna.db'}"
        study = optuna.load_study(study_name=tags["mlbench.study"],
                                  storage=tags["mlbench.storage"])
        studies[strategy] = study
        states = Counter(t.state for t in study.trials)
        assert states[TrialState.COMPLETE] + states[TrialState.PRUNED] == 5
        budget = json.loads(Path(client.download_artifacts(
            tune.info.run_id, "budget.json", str(tmp_path))).read_text())
        assert budget["trials_budget"] == 5 and budget["strategy"] == strategy
        assert budget["trials_complete"] == states[TrialState.COMPLETE]
        assert budget["epochs_spent"] == sum(len(t.intermediate_values) for t in study.trials)
        assert budget["search_space_hash"] == tags["mlbench.search_space_hash"]
        assert budget["best_val_acc1"] == study.best_value
        artifacts = {a.path for a in client.list_artifacts(tune.info.run_id)}
        assert {"budget.csv", "optimization_history.png", "intermediate_values.png"} <= artifacts
        trials = [r for r in runs(uri, "trial")
                  if r.data.tags["mlflow.parentRunId"] == tune.info.run_id]
        assert sorted(int(r.data.tags["mlbench.trial_number"]) for r in trials) == list(range(5))
        assert Counter(r.data.tags["mlbench.trial_state"] for r in trials) == Counter(
            {s.name: n for s, n in states.items()})
    same = ("search_space", "sampler", "sampler_seed", "pruner", "trials", "epochs_cap")
    first, second = tunes.values()
    assert {k: first.data.params[k] for k in same} == {k: second.data.params[k] for k in same}
    # the same seeded start-up: both studies' first trial tried the very same config
    assert studies["global_weight"].trials[0].params == studies["layer_grad"].trials[0].params

    tuned = runs(uri, "prune")
    assert len(tuned) == 2 and all(r.data.tags["mlbench.tuned"] == "true" for r in tuned)
    for run in tuned:  # never the name of an untuned cell
        p = run.data.params
        name = prune_run_name(p["strategy"], float(p["compression"]), int(p["seed"]))
        assert run.info.run_name == name + "-tuned"
        tune = tunes[run.data.params["strategy"]]
        assert run.data.tags["mlbench.tune_run_id"] == tune.info.run_id
        best = studies[run.data.params["strategy"]].best_trial
        for key, value in best.params.items():
            assert run.data.params[key] == param_text(value)
        # same seed, same config: the test run's fine-tuning retraces the best trial on val
        curve = client.get_metric_history(run.info.run_id, "val_acc1")
        assert curve[-1].value == pytest.approx(best.value)
    assert "global_weight" in out and "best_val_acc1" in out


def no_study_or_run(tmp_path: Path) -> bool:
    if (tmp_path / "mlflow.db").exists():  # else certainly no run (and no slow store creation)
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        no_runs = not client.search_runs([e.experiment_id for e in client.search_experiments()])
    else:
        no_runs = True
    db = tmp_path / "optuna.db"
    no_study = not db.exists() or not optuna.get_all_study_names(f"sqlite:///{db}")
    return no_runs and no_study


@pytest.mark.parametrize(("extra", "space", "expected"), [
    ((), {}, "search_space must map fine-tuning options"),
    ((), {"lr": {"low": 0.5, "high": 0.1}}, "search_space.lr: low 0.5 is above high 0.1"),
    (("--trials", "0"), SPACE, "--trials must be >= 1, got 0"),
    (("--strategies", "magic"), SPACE, "unknown strategy 'magic'"),
    (("--storage", "redis://127.0.0.1:6379"), SPACE, "unknown storage scheme 'redis'"),
    (("--storage", "sqlite:////nonexistent/dir/optuna.db"), SPACE, "no folder /nonexistent/dir"),
    (("--storage", f"postgresql://u:p@127.0.0.1:{free_port()}/optuna"), SPACE, "--storage"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_created(tmp_path, capsys, extra, space,
                                                          expected):
    argv = tune_argv(tmp_path, *extra, space=space)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert "Traceback" not in err[0] and "p@" not in err[0]  # no password in the message
    assert no_study_or_run(tmp_path)


# -- many workers, kill -9 ----------------------------------------------------------------

SLOW_TINY = {**TUNE_TINY, "synthetic_samples": 768}  # trials long enough to be caught running


def worker_cmd(tmp_path: Path, trials: int) -> list[str]:
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump({**SLOW_TINY, "seeds": [0], "search_space": {
        **SPACE, "epochs": {"low": 2, "high": 3}}}))
    return [sys.executable, "-m", "mlbench", "tune", "--project", str(path),
            "--strategies", "global_weight", "--trials", str(trials),
            "--storage", f"journal:{tmp_path / 'studies.log'}"]


def worker_env(tmp_path: Path) -> dict[str, str]:
    env = clean_env(f"sqlite:///{tmp_path / 'mlflow.db'}")
    env.update(MLBENCH_TRIAL_HEARTBEAT="1")
    return env


def journal_study(tmp_path: Path) -> optuna.Study | None:
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "studies.log")))
    # The tuning study itself; beside it the storage holds the queue of the base model
    # (``mlbench-base-...``) and that of the tuned runs on test (``...-tuned``).
    names = [s.study_name for s in storage.get_all_studies()
             if not s.study_name.startswith("mlbench-base-")
             and not s.study_name.endswith("-tuned")]
    return optuna.load_study(study_name=names[0], storage=storage) if names else None


def check_exact_budget(tmp_path: Path, trials: int) -> optuna.Study:
    """Exactly ``trials`` charged trials, each with exactly one finished trial run."""
    study = journal_study(tmp_path)
    charged = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(charged) == trials
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    finished = Counter(int(r.data.tags["mlbench.trial_number"]) for r in runs(uri, "trial")
                       if r.info.status == "FINISHED")
    assert finished == Counter(t.number for t in charged)  # none repeated, none lost
    assert len(runs(uri, "tune")) == 1 and len(runs(uri, "prune")) == 1
    return study


def drain(proc: subprocess.Popen, log: Path) -> None:
    try:
        assert proc.wait(timeout=400) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_two_workers_share_one_study_without_repeating_or_losing_trials(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert runs(uri, "tune") == []  # create the store first
    # The base model first: otherwise the worker that trains it runs the whole study
    # while the other waits for it, and only one of them would take trials.
    obtain_base(prepare(RunConfig.from_flat(SLOW_TINY)),
                       Tracker(TrackingConfig(tracking_uri=uri)))
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = [subprocess.Popen(worker_cmd(tmp_path, 8), cwd=tmp_path, env=worker_env(tmp_path),
                              stdout=log.open("w"), stderr=subprocess.STDOUT,
                              start_new_session=True) for log in logs]
    for proc, log in zip(procs, logs, strict=True):
        drain(proc, log)
    check_exact_budget(tmp_path, 8)
    assert len(runs(uri, "train")) == 1  # the workers found that base model
    workers = {r.data.tags["mlbench.worker"] for r in runs(uri, "trial")}
    assert len(workers) == 2  # both workers really ran trials of the one study


@pytest.mark.slow
def test_a_killed_study_resumes_and_ends_with_exactly_the_budget(tmp_path):
    log = tmp_path / "first.log"
    proc = subprocess.Popen(worker_cmd(tmp_path, 4), cwd=tmp_path, env=worker_env(tmp_path),
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    killed = None
    while time.monotonic() < deadline and proc.poll() is None:
        study = journal_study(tmp_path) if (tmp_path / "studies.log").exists() else None
        trials = study.trials if study else []
        running = [t for t in trials if t.state == TrialState.RUNNING and t.params]
        if running and any(t.state.is_finished() for t in trials):
            os.killpg(proc.pid, signal.SIGKILL)  # mid-trial, after at least one finished
            killed = running[0]
            break
        time.sleep(0.1)
    proc.wait()
    assert killed is not None, log.read_text()[-3000:]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dead_runs = [r.info.run_id for r in runs(uri, "trial") if r.info.status == "RUNNING"]
    assert len(dead_runs) <= 1  # none if killed before its trial run started

    again = tmp_path / "again.log"
    drain(subprocess.Popen(worker_cmd(tmp_path, 4), cwd=tmp_path, env=worker_env(tmp_path),
                           stdout=again.open("w"), stderr=subprocess.STDOUT,
                           start_new_session=True), again)
    study = check_exact_budget(tmp_path, 4)
    dead = study.trials[killed.number]
    assert dead.state == TrialState.FAIL  # failed by its missing heartbeat
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params  # its budget given back
    assert retry[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    client = MlflowClient(uri)
    assert all(client.get_run(i).info.status == "FAILED" for i in dead_runs)


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def postgres_url():
    """A private PostgreSQL cluster (run as the `postgres` user) on a free port."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb or shutil.which("runuser") is None:
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
    if not any(importlib.util.find_spec(m) for m in ("psycopg", "psycopg2")):
        pytest.skip("no PostgreSQL driver installed (pip install 'psycopg[binary]')")
    folder = Path(tempfile.mkdtemp(prefix="mlbench-tune-pg-"))
    shutil.chown(folder, "postgres")
    bin_dir, port = Path(initdb[-1]).parent, str(free_port())
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(folder / "data"),
                    "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    server = subprocess.Popen([*as_postgres, str(bin_dir / "postgres"), "-D",
                               str(folder / "data"), "-p", port, "-k", str(folder),
                               "-h", "127.0.0.1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    client = ["-h", "127.0.0.1", "-p", port, "-U", "postgres"]
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([str(bin_dir / "pg_isready"), *client],
                             capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.3)
        subprocess.run([str(bin_dir / "createdb"), *client, "optuna"], check=True)
        yield f"postgresql://postgres:secret@127.0.0.1:{port}/optuna"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_study_on_postgresql_keeps_its_exact_budget(postgres_url, tracking_uri, capsys):
    setup, tracker, state = tiny_setup(tracking_uri)
    spec = parse_storage(postgres_url)
    assert "secret" not in spec.display
    tune = TuneConfig(space=parse_search_space(SPACE), strategies=("global_weight",), trials=3)
    row = tune_strategy(setup, tracker, state, tune, open_storage(spec), spec)
    study = optuna.load_study(study_name=row["study"], storage=spec.url)
    assert Counter(t.state.is_finished() for t in study.trials) == Counter({True: 3})
    (tune_run,) = runs(tracking_uri, "tune")
    assert tune_run.data.tags["mlbench.storage"] == spec.display
    # the same server, a database that does not exist: one line, exit 2, nothing created
    line = postgres_url.rsplit("/", 1)[0] + "/nowhere"
    capsys.readouterr()
    code = main(["tune", "--storage", line, "--tracking-uri", tracking_uri, "--trials", "2",
                 "--strategies", "random", *[f"--{k.replace('_', '-')}={v}"
                                             for k, v in TUNE_TINY.items()]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot reach the database" in err[0], err
    assert "secret" not in err[0] and len(runs(tracking_uri, "tune")) == 1
