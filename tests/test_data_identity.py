"""Data identity: splits logged as MLflow datasets; a base is reused only for the same data;
the pruned network back from its run (load_pruned, --log-model); what the registry says."""

from __future__ import annotations

import json

import mlflow
import torch
from mlflow import MlflowClient
from mlflow.entities import Run

import mlbench
from mlbench.cli import main
from mlbench.config import DataConfig
from mlbench.data import Splits, data_digest, load_dataset, split_digest
from mlbench.data._tensor import TensorSplit
from mlbench.device import Precision
from mlbench.engine import evaluate
from tests.conftest import tiny_argv


def _runs(uri: str, stage: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`mlbench.stage` = '{stage}'", order_by=["start_time"])


def test_the_digest_follows_the_content_not_the_object():
    cfg = DataConfig(dataset="synthetic", synthetic_shape="1x8x8", synthetic_samples=64)
    a, b = load_dataset(cfg, "cpu"), load_dataset(cfg, "cpu")
    assert data_digest(a) == data_digest(b)  # loaded twice: the same data
    train = a.train
    assert isinstance(train, TensorSplit)
    x = train.x.clone()
    x[0, 0, 0, 0] ^= 1  # one bit of one pixel
    changed = TensorSplit(x, train.y, train.normalize)
    assert split_digest(changed) != split_digest(train)
    bigger = load_dataset(DataConfig(dataset="synthetic", synthetic_shape="1x8x8",
                                     synthetic_samples=72), "cpu")
    assert data_digest(bigger) != data_digest(a)


def test_runs_log_their_splits_and_other_data_never_reuses_a_base(tracking_uri, capsys):
    small = tiny_argv(base_epochs=1, synthetic_samples=160)
    assert main(["prune", *small, "--tracking-uri", tracking_uri]) == 0
    # stderr is not a terminal here (CI, Kubernetes, nohup): a line per epoch, no bar
    epochs = [x for x in capsys.readouterr().err.splitlines() if " epoch " in x]
    assert [x.split("  ")[0] for x in epochs] == [
        "train base-lenet-synthetic-s0 epoch 1/1", "fine-tune global_weight-c4-s0 epoch 1/1"]
    assert all("val_acc1=" in x and x.endswith(" s") for x in epochs)
    # another compression (the same one again would print its finished run): same base
    assert main(["prune", *small, "--compression", "8", "--tracking-uri", tracking_uri]) == 0
    assert len(_runs(tracking_uri, "train")) == 1
    other = tiny_argv(base_epochs=1, synthetic_samples=192)  # another size: another base
    assert main(["prune", *other, "--log-model", "--tracking-uri", tracking_uri]) == 0
    trains = _runs(tracking_uri, "train")
    prunes = _runs(tracking_uri, "prune")
    assert len(trains) == 2
    assert prunes[0].data.params["base_run_id"] == prunes[1].data.params["base_run_id"]
    assert prunes[2].data.params["base_run_id"] != prunes[0].data.params["base_run_id"]
    assert len({r.data.tags["mlbench.base_hash"] for r in trains}) == 2

    run = MlflowClient(tracking_uri).get_run(prunes[2].info.run_id)
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    assert inputs["train"].name == "synthetic-train"
    samples = {c: json.loads(d.profile)["num_samples"] for c, d in inputs.items()}
    assert samples["test"] == 192 // 4 and samples["train"] + samples["val"] == 192
    splits = load_dataset(DataConfig(dataset="synthetic", synthetic_shape="1x8x8",
                                     synthetic_classes=4, synthetic_samples=192),
                          torch.device("cpu"))
    assert inputs["test"].digest == split_digest(splits.test)
    assert run.data.tags["mlbench.data_digest"] == data_digest(splits)
    check_pruned_model_and_registry(tracking_uri, run, splits)


def check_pruned_model_and_registry(uri: str, run: Run, splits: Splits) -> None:
    """load_pruned gives the run's very network; --log-model; what the registry says."""
    client = MlflowClient(uri)
    model = mlbench.load_pruned(run.info.run_id, uri)
    test = evaluate(model, splits.test, 32, Precision(torch.device("cpu"), False))
    assert test["acc1"] == run.data.metrics["acc1"]  # the very network the run measured
    nonzero = sum(int(p.count_nonzero()) for p in model.parameters())
    assert nonzero == run.data.metrics["params_nz"]

    ids = [e.experiment_id for e in client.search_experiments()]
    logged = [m for m in client.search_logged_models(ids) if m.name == "pruned_model"]
    assert [m.source_run_id for m in logged] == [run.info.run_id]  # --log-model
    flavor = mlflow.pytorch.load_model(logged[0].model_uri)  # torch.export (pt2): no pickle
    x = torch.zeros(2, 1, 8, 8)
    assert torch.equal(flavor(x), model(x))

    name = "mlbench-synthetic-lenet"
    version = client.get_model_version_by_alias(name, "seed-0")  # the newest base of seed 0
    assert version.run_id == run.data.params["base_run_id"]
    text = version.description
    assert "lenet on synthetic" in text and "seed 0" in text
    base = client.get_run(version.run_id)
    assert f"test acc1 {base.data.metrics['acc1']:.4f}" in text
    assert base.data.tags["mlbench.base_hash"] in text
