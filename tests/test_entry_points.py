"""Every MLflow Project entry point through a real `mlflow run . --env-manager local`.

The run tree each door leaves must be the CLI's: the run `mlflow run` opened becomes the
unit of work (a prune run, the sweep run with its cells as children, the tune run with one
tune run per strategy and its trials), no run is its own parent, a reused base model is
recorded on the opened run instead of an empty duplicate, a refused input leaves no run
that the UI or the report shows, and the experiment opens in the UI's model-training view.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml
from mlflow import MlflowClient

from mlbench.names import STAGE
from tests.conftest import MLFLOW, REPO, clean_env

PARENT = "mlflow.parentRunId"
BASE = {"dataset": "digits", "model": "lenet", "base_epochs": 1, "device": "cpu",
        "speed_repeats": 0}


def doors(calls: list[tuple[str, dict]], tmp_path, uri: str
          ) -> list[subprocess.CompletedProcess]:
    """Each (entry point, params) through its own `mlflow run`, all at once (independent
    doors on one store, as two terminals would: CI's second core is otherwise idle)."""
    procs = []
    for entry, params in calls:
        argv = [MLFLOW, "run", str(REPO), "--env-manager", "local", "-e", entry]
        for key, value in params.items():
            argv += ["-P", f"{key}={value}"]
        procs.append(subprocess.Popen(argv, cwd=tmp_path, env=clean_env(uri), text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def door(entry: str, params: dict, tmp_path, uri: str) -> subprocess.CompletedProcess:
    return doors([(entry, params)], tmp_path, uri)[0]


def opened(proc: subprocess.CompletedProcess) -> str:
    """The id of the run `mlflow run` opened (it names it on stderr)."""
    line = next(x for x in proc.stderr.splitlines() if "=== Run (ID '" in x)
    return line.split("=== Run (ID '")[1].split("'")[0]


def all_runs(client: MlflowClient, deleted: bool = False) -> list:
    from mlflow.entities import ViewType

    ids = [e.experiment_id for e in client.search_experiments()]
    view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
    return client.search_runs(ids, run_view_type=view, max_results=10_000)


@pytest.mark.slow
def test_every_entry_point_leaves_the_clis_run_tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the store's artifact root (./mlruns) is made here
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({
        **{k: v for k, v in BASE.items() if k != "device"}, "epochs": 1, "device": "cpu",
        "strategies": ["global_weight"], "compressions": [2], "seeds": [0],
        "search_space": {"lr": {"low": 0.01, "high": 0.1, "log": True},
                         "epochs": {"low": 1, "high": 1}}}))

    main = door("main", {**BASE, "epochs": 1, "compression": 2}, tmp_path, uri)
    assert main.returncode == 0, main.stderr[-3000:]
    run = client.get_run(opened(main))
    assert run.data.tags[STAGE] == "prune" and run.info.status == "FINISHED"

    train = door("train", {k: v for k, v in BASE.items()
                           if k not in ("speed_repeats", "base_epochs")}
                 | {"epochs": 1}, tmp_path, uri)  # train's --epochs is the base's
    assert train.returncode == 0, train.stderr[-3000:]
    reuse = client.get_run(opened(train))
    base_runs = [r for r in all_runs(client) if r.data.tags.get(STAGE) == "train"
                 and "mlbench.reused_run_id" not in r.data.tags]
    assert len(base_runs) == 1  # trained once, by `main`
    assert reuse.data.tags["mlbench.reused_run_id"] == base_runs[0].info.run_id
    assert reuse.data.params["base_run_id"] == base_runs[0].info.run_id  # not empty

    sweep, tune = doors([  # independent: both reuse the base model `main` trained
        ("sweep", {"project": preset, "strategies": "global_weight,layer_weight",
                   "data_dir": tmp_path / "data", "download": "false"}),
        ("tune", {"project": preset, "trials": 2, "strategies": "global_weight",
                  "seeds": 0})], tmp_path, uri)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    sweep_id = opened(sweep)
    sweep_run = client.get_run(sweep_id)
    assert sweep_run.data.tags[STAGE] == "sweep"
    assert PARENT not in sweep_run.data.tags
    cells = [r for r in all_runs(client) if r.data.tags.get(PARENT) == sweep_id]
    assert sorted(r.data.params["strategy"] for r in cells) == ["global_weight",
                                                                "layer_weight"]
    assert {r.data.tags[STAGE] for r in cells} == {"prune"}

    assert tune.returncode == 0, tune.stderr[-3000:]
    tune_id = opened(tune)
    assert client.get_run(tune_id).data.tags[STAGE] == "tune"
    runs = all_runs(client)
    studies = [r for r in runs if r.data.tags.get(STAGE) == "tune"
               and r.data.tags.get(PARENT) == tune_id]
    assert len(studies) == 1  # one per strategy
    trials = [r for r in runs if r.data.tags.get(PARENT) == studies[0].info.run_id
              and r.data.tags.get(STAGE) == "trial"]
    assert len(trials) == 2

    report, findings = doors([("report", {"output": tmp_path / "report"}),
                              ("findings", {})], tmp_path, uri)
    assert report.returncode == 0, report.stderr[-3000:]
    assert client.get_run(opened(report)).data.tags[STAGE] == "report"
    assert findings.returncode == 0, findings.stderr[-3000:]

    before = {r.info.run_id for r in all_runs(client)}
    # out of bounds, not a number, and a name checked before torch loads
    bad = ({"compression": "0.5"}, {"epochs": "abc"}, {"strategy": "magic"})
    refusals = doors([("main", {**BASE, **b}) for b in bad], tmp_path, uri)
    assert "unknown strategy 'magic'; choose one of" in refusals[2].stderr
    for refused in refusals:
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr, refused.stderr[-3000:]
        run_id = opened(refused)
        deadline = time.monotonic() + 60  # deleted by a detached process once MLflow ends it
        while client.get_run(run_id).info.lifecycle_stage != "deleted" \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        gone = client.get_run(run_id)
        assert gone.info.lifecycle_stage == "deleted"
        assert gone.info.status == "FAILED" and gone.data.tags["mlbench.refused"] == "true"
    assert {r.info.run_id for r in all_runs(client)} == before  # nothing the UI shows

    runs = all_runs(client)
    assert all(r.data.tags.get(PARENT) != r.info.run_id for r in runs)
    for experiment in client.search_experiments():
        assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"


def test_mlbench_experiments_open_in_the_model_training_view(tmp_path, monkeypatch):
    from mlbench.config import TrackingConfig
    from mlbench.tracking import Tracker

    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # Tracker sets it: restored after
    tracker = Tracker(TrackingConfig(tracking_uri=uri, experiment="mine"))
    made = tracker.experiment_id()
    client = MlflowClient(uri)
    assert client.get_experiment(made).tags["mlflow.experimentKind"] == \
        "custom_model_development"
    default = client.get_experiment_by_name("Default").experiment_id
    assert "mlflow.experimentKind" not in client.get_experiment(default).tags
    Tracker(TrackingConfig(tracking_uri=uri)).experiment_id()  # one it uses, not makes
    assert client.get_experiment(default).tags["mlflow.experimentKind"] == \
        "custom_model_development"


def test_a_refused_project_run_is_deleted_once_mlflow_has_ended_it(tmp_path, monkeypatch):
    """What `mlflow run` does around a refused input, with its own client calls."""
    from mlbench.cli import main

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    opened_run = client.create_run("0").info.run_id  # as `mlflow run` does
    kept = client.create_run("0").info.run_id
    client.log_metric(kept, "acc1", 0.5)  # a run that holds work is never deleted
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for run_id in (opened_run, kept):
        monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
        assert main(["prune", "--compression", "0.5", "--tracking-uri", uri]) == 2
        assert client.get_run(run_id).info.lifecycle_stage == "active"  # MLflow ends it
        client.set_terminated(run_id, "FAILED")  # ... then (mlflow/projects _wait_for)
    deadline = time.monotonic() + 60
    while client.get_run(opened_run).info.lifecycle_stage != "deleted" \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get_run(opened_run).info.lifecycle_stage == "deleted"
    assert client.get_run(opened_run).data.tags["mlbench.refused"] == "true"
    assert client.get_run(kept).info.lifecycle_stage == "active"
