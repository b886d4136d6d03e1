"""Real prune runs (sqlite MLflow store): a channel strategy and a gradual schedule."""

from __future__ import annotations

import math

import pytest
import torch
from mlflow import MlflowClient

from mlbench import load_pruned
from mlbench.cli import main
from mlbench.predictions import PREDICTIONS, load_predictions
from tests.conftest import tiny_argv


@pytest.mark.slow
def test_structured_and_scheduled_runs_log_measured_speed_and_reload(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for extra in ({"strategy": "global_l1_channel"},
                  {"prune_schedule": "gradual", "epochs": 2, "speed_repeats": 0}):
        assert main(["prune", *tiny_argv(**extra), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = {r.data.params["strategy"]: r
            for r in client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")}
    channel, gradual = runs["global_l1_channel"], runs["global_weight"]
    m = channel.data.metrics
    assert m["compression"] == pytest.approx(4.0, rel=0.1)
    assert m["params_nz"] < m["params"] and m["macs_nz"] < m["macs"]
    # issue 19: NaN when the run's cost cap left no time (a loaded machine): not measured
    for key in ("measured_speedup", "latency_ms", "base_latency_ms", "throughput",
                "base_throughput"):
        assert m[key] > 0 or math.isnan(m[key])
    assert m["speed_threads"] > 0 and m["speed_seconds"] >= 0
    lo, hi = m["measured_speedup_lo"], m["measured_speedup_hi"]  # NaN: one pair, no time
    assert (lo <= m["measured_speedup"] <= hi) or (math.isnan(lo) and math.isnan(hi))
    assert m["measurable_speedup"] == float(lo > 1 or hi < 1)
    # issue 19: a channel run carries the paper's convention, like a masked one
    assert m["speedup_conv_linear"] == pytest.approx(
        m["macs_conv_linear"] / m["macs_conv_linear_nz"])
    assert m["speedup_conv_linear"] > 1
    model = load_pruned(channel.info.run_id, uri)  # the public API: structure.json + weights
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == m["params_nz"]
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 4)
    g = gradual.data.metrics
    assert gradual.data.params["prune_schedule"] == "gradual"
    assert g["compression"] == pytest.approx(4.0, abs=0.01)  # exact, like one-shot
    assert "measured_speedup" not in g  # --speed-repeats 0 switches measuring off
    assert [h.step for h in client.get_metric_history(gradual.info.run_id, "val_acc1")] == [1, 2]
    for run in (channel, gradual):  # the smaller channel model and a schedule log predictions
        path = client.download_artifacts(run.info.run_id, PREDICTIONS, str(tmp_path))
        assert float(load_predictions(path).correct.mean()) == run.data.metrics["acc1"]


def test_channel_strategy_with_a_schedule_is_refused_before_any_work(tmp_path, capsys):
    code = main(["prune", *tiny_argv(strategy="global_l1_channel", prune_schedule="iterative",
                                     prune_rounds=1),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert code == 2
    assert "runs oneshot" in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists()


def test_a_finished_configuration_is_not_run_twice(tmp_path, capsys):
    """`prune` again with the same options (a rerun after a kill that landed once the run
    had finished, say): one line naming the finished run, its numbers, no second run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["prune", *tiny_argv(base_epochs=2), "--tracking-uri", uri]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert main(argv) == 0
    again = capsys.readouterr()
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")
    assert run.info.status == "FINISHED"
    (line,) = [x for x in again.err.splitlines() if "already done" in x]
    assert run.info.run_id in line and "global_weight-c4-s0" in line
    assert again.out.splitlines()[0] == first.out.splitlines()[0]  # the same numbers
    assert main(["prune", *tiny_argv(base_epochs=2, seed=1), "--tracking-uri", uri]) == 0
    assert len(client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")) == 2
