"""Pruned models: load_pruned rebuilds a run's network exactly; --log-model; the registry."""

from __future__ import annotations

import mlflow
import torch
from mlflow import MlflowClient

import mlbench
from mlbench.cli import main
from mlbench.config import DataConfig
from mlbench.data import load_dataset
from mlbench.device import Precision
from mlbench.engine import evaluate
from tests.conftest import tiny_argv


def test_load_pruned_gives_the_runs_network_and_the_registry_says_what_a_base_is(
        tracking_uri):
    argv = tiny_argv(base_epochs=1)
    assert main(["prune", *argv, "--log-model", "--tracking-uri", tracking_uri]) == 0
    client = MlflowClient(tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")

    model = mlbench.load_pruned(run.info.run_id, tracking_uri)
    splits = load_dataset(DataConfig(dataset="synthetic", synthetic_shape="1x8x8",
                                     synthetic_classes=4, synthetic_samples=192), "cpu")
    test = evaluate(model, splits.test, 32, Precision(torch.device("cpu"), False))
    assert test["acc1"] == run.data.metrics["acc1"]  # the very network the run measured
    nonzero = sum(int(p.count_nonzero()) for p in model.parameters())
    assert nonzero == run.data.metrics["params_nz"]

    logged = [m for m in client.search_logged_models(ids) if m.name == "pruned_model"]
    assert [m.source_run_id for m in logged] == [run.info.run_id]  # --log-model
    flavor = mlflow.pytorch.load_model(logged[0].model_uri)  # torch.export (pt2): no pickle
    x = torch.zeros(2, 1, 8, 8)
    assert torch.equal(flavor(x), model(x))

    (version,) = client.search_model_versions("name='mlbench-synthetic-lenet'")
    assert client.get_model_version_by_alias("mlbench-synthetic-lenet", "seed-0").version \
        == version.version
    text = version.description
    assert "lenet on synthetic" in text and "seed 0" in text
    base = client.get_run(version.run_id)
    assert f"test acc1 {base.data.metrics['acc1']:.4f}" in text
    assert base.data.tags["mlbench.base_hash"] in text
