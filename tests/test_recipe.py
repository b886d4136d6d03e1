"""A real prune run on a real sqlite MLflow store: schema, masks, reuse, determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

import mlbench
from mlbench.cli import main
from mlbench.config import RunConfig
from mlbench.device import Precision
from mlbench.engine import evaluate, fit
from mlbench.masks import apply_masks, load_masks
from mlbench.recipe import prepare
from mlbench.setup import generator, seeded
from mlbench.speed import TIMING_METRICS
from tests.conftest import TINY, tiny_argv

PARAMS = ["dataset", "model", "strategy", "compression", "seed", "epochs", "batch_size",
          "optimizer", "lr", "momentum", "weight_decay", "schedule", "base_run_id"]
EPOCH_METRICS = ["train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5", "lr"]
FINAL_METRICS = ["acc1", "acc5", "loss", "pre_acc1", "pre_acc5", "base_acc1", "base_acc5",
                 "params", "params_nz", "compression", "macs", "macs_nz", "flops", "flops_nz",
                 "speedup"]


def prune(uri: str, experiment: str = "t", **overrides: object) -> None:
    code = main(["prune", *tiny_argv(**overrides), "--tracking-uri", uri,
                 "--experiment", experiment])
    assert code == 0


def runs(uri: str, stage: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`mlbench.stage` = '{stage}'")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tracked prune run (base model trained in a nested run), shared by the tests."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        prune(uri)
    return uri


def test_prune_run_follows_the_tracking_schema(store):
    (run,) = runs(store, "prune")
    (train,) = runs(store, "train")
    assert run.info.status == "FINISHED" and train.info.status == "FINISHED"
    assert run.info.run_name == "global_weight-c4-s0"
    assert train.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert train.info.experiment_id == run.info.experiment_id  # nested in the same experiment
    assert MlflowClient(store).get_experiment(run.info.experiment_id).name == "t"
    assert set(PARAMS) <= set(run.data.params)
    assert run.data.params["base_run_id"] == train.info.run_id
    assert run.data.params["strategy"] == "global_weight"
    assert set(FINAL_METRICS) <= set(run.data.metrics)
    m = run.data.metrics
    assert abs(m["params_nz"] - m["params"] / 4) <= 1
    assert m["compression"] == pytest.approx(m["params"] / m["params_nz"])
    assert m["flops"] == 2 * m["macs"] and m["speedup"] == pytest.approx(m["macs"] / m["macs_nz"])
    assert m["base_acc1"] > 0.5  # 4 classes: chance is 0.25
    for tag in ("mlbench.config_hash", "mlbench.version", "mlbench.git_commit"):
        assert run.data.tags[tag]
    client = MlflowClient(store)
    for key in EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, key)
        assert [h.step for h in history] == [1]  # TINY fine-tunes one epoch
    assert len(client.get_metric_history(train.info.run_id, "val_acc1")) == TINY["base_epochs"]


def test_artifacts_rebuild_the_pruned_and_fine_tuned_model(store, tmp_path):
    (run,) = runs(store, "prune")
    client = MlflowClient(store)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"masks.safetensors", "layers.csv", "config.json", "weights.safetensors"} <= names

    # the base model is registered as its run's base_model/ folder, and loads without pickle
    (version,) = client.search_model_versions("name='mlbench-synthetic-lenet'")
    assert version.run_id == run.data.params["base_run_id"]
    assert version.tags["mlbench.base_hash"] and version.tags["mlbench.format"] == "safetensors"
    assert version.source.endswith("/base_model")
    base = load_file(client.download_artifacts(version.run_id, "base_model/weights.safetensors",
                                               tmp_path))
    loaded = mlbench.load_base("models:/mlbench-synthetic-lenet@seed-0", store)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in base.items())
    masks = load_masks(client.download_artifacts(run.info.run_id, "masks.safetensors", tmp_path))

    cfg = RunConfig.from_flat(TINY)
    setup = prepare(cfg)
    setup.model.load_state_dict(base)
    apply_masks(setup.model, masks)
    precision = Precision(setup.device, False)
    pre = evaluate(setup.model, setup.splits.test, cfg.finetune.batch_size)
    assert pre["acc1"] == run.data.metrics["pre_acc1"]  # masks + base = the pruned model

    with seeded(cfg.seed):  # fine-tuning again reproduces the logged run exactly
        fit(setup.model, setup.splits.train, setup.splits.val, cfg.finetune,
            generator=generator(cfg.seed), precision=precision, masks=masks)
    final = evaluate(setup.model, setup.splits.test, cfg.finetune.batch_size)
    assert final["acc1"] == run.data.metrics["acc1"]
    logged = load_file(client.download_artifacts(run.info.run_id, "weights.safetensors", tmp_path))
    assert all(torch.equal(logged[k], v) for k, v in setup.model.state_dict().items())

    table = client.download_artifacts(run.info.run_id, "layers.csv", tmp_path)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"name", "shape", "params", "nonzero", "density", "macs", "macs_nz"} <= set(rows[0])
    assert sum(int(r["params"]) for r in rows) == run.data.metrics["params"]
    assert sum(int(r["nonzero"]) for r in rows) == run.data.metrics["params_nz"]
    config = json.loads(
        Path(client.download_artifacts(run.info.run_id, "config.json", tmp_path)).read_text()
    )
    assert config["strategy"] == "global_weight" and config["base_run_id"] == version.run_id


def test_a_second_strategy_reuses_the_registered_base_model(store):
    prune(store, strategy="layer_grad")
    trains = runs(store, "train")
    assert len(trains) == 1  # not trained again
    prunes = runs(store, "prune")
    assert {r.data.params["base_run_id"] for r in prunes} == {trains[0].info.run_id}
    assert {r.data.metrics["base_acc1"] for r in prunes} == {prunes[0].data.metrics["base_acc1"]}
    client = MlflowClient(store)
    assert len(client.search_model_versions("name='mlbench-synthetic-lenet'")) == 1


def test_same_seed_gives_identical_masks_and_metrics(tmp_path):
    """Two stores: one trains its base model, and both runs give the same numbers."""
    results = []
    for name in ("a", "b"):
        uri = f"sqlite:///{tmp_path / name}.db"
        prune(uri, strategy="random")
        (run,) = runs(uri, "prune")
        masks = MlflowClient(uri).download_artifacts(
            run.info.run_id, "masks.safetensors", str(tmp_path / name))
        results.append((run.data.metrics, load_masks(masks)))
    (ma, ka), (mb, kb) = results
    timed = set(TIMING_METRICS)  # measurements of the machine, not results of the run
    assert set(ma) == set(mb) and timed <= set(ma)
    assert {k: v for k, v in ma.items() if k not in timed} == {
        k: v for k, v in mb.items() if k not in timed}
    assert all(torch.equal(ka[n], kb[n]) for n in ka)


def test_default_store_is_an_absolute_sqlite_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from mlbench.tracking import resolve_uri

    assert resolve_uri(None) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert resolve_uri("sqlite:///x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    assert mlflow  # imported for the store


TRAIN_ARGV = ["--dataset", "synthetic", "--synthetic-shape", "1x8x8", "--synthetic-classes", "4",
              "--synthetic-samples", "192", "--model", "mlp", "--epochs", "3",
              "--batch-size", "32", "--device", "cpu"]


def test_train_registers_the_base_model_once(tracking_uri, capsys):
    assert main(["train", *TRAIN_ARGV, "--tracking-uri", tracking_uri]) == 0
    first = capsys.readouterr().out
    assert "base model mlbench-synthetic-mlp version 1" in first
    (train,) = runs(tracking_uri, "train")
    assert train.data.params["base_epochs"] == "3" and train.data.params["model"] == "mlp"
    assert len(MlflowClient(tracking_uri).get_metric_history(train.info.run_id, "val_acc1")) == 3
    assert main(["train", *TRAIN_ARGV, "--tracking-uri", tracking_uri]) == 0
    assert capsys.readouterr().out == first  # found again, not trained again
    assert len(runs(tracking_uri, "train")) == 1
    # a different recipe is a different base model
    assert main(["train", *TRAIN_ARGV, "--lr", "0.02", "--tracking-uri", tracking_uri]) == 0
    assert "version 2" in capsys.readouterr().out


class Untraceable(torch.nn.Module):
    """Data-dependent Python control flow: torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if float(x.sum()) > 0 else -self.fc(x)


def test_log_model_registers_an_exported_model_and_falls_back_to_weights_without_pickle(
        tracking_uri, tmp_path, capsys):
    from mlbench.config import TrackingConfig
    from mlbench.models import create_model
    from mlbench.tracking import Tracker

    tracker = Tracker(TrackingConfig(tracking_uri=tracking_uri, experiment="x"))
    traceable = create_model("lenet", (1, 8, 8), 10).eval()
    note = {"model": "lenet", "input_shape": [1, 8, 8], "num_classes": 10}
    with tracker.run("train", "traceable"):  # --log-model: an MLflow model (torch.export)
        tracker.log_base(traceable.state_dict(), note)
        assert tracker.registry.register("mlbench-test-lenet", "h1", note, model=traceable,
                                         example=torch.zeros(2, 1, 8, 8).numpy()) == "1"
    exported = mlflow.pytorch.load_model("models:/mlbench-test-lenet/1")  # pt2: no pickle
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(exported(x), traceable(x))
    assert torch.equal(mlbench.load_base("models:/mlbench-test-lenet/1", tracking_uri)(x),
                       traceable(x))  # its base_model/ folder is there either way

    model = Untraceable().eval()
    note = {"model": "untraceable", "input_shape": [4], "num_classes": 2}
    with tracker.run("train", "untraceable"):
        tracker.log_base(model.state_dict(), note)
        version = tracker.registry.register("mlbench-test-untraceable", "h", note, model=model,
                                            example=torch.ones(2, 4).numpy())
    assert version == "1"
    assert "torch.export cannot trace untraceable" in capsys.readouterr().err
    (mv,) = MlflowClient(tracking_uri).search_model_versions("name='mlbench-test-untraceable'")
    assert mv.tags["mlbench.base_hash"] == "h" and mv.tags["mlbench.format"] == "safetensors"
    files = Path(mlflow.artifacts.download_artifacts(
        "models:/mlbench-test-untraceable/1", dst_path=str(tmp_path / "dl")))
    assert sorted(p.name for p in files.iterdir()) == ["model.json", "weights.safetensors"]
    loaded = load_file(str(files / "weights.safetensors"))  # no pickle anywhere
    assert torch.equal(loaded["fc.weight"], model.fc.weight)


def test_load_base_names_a_bad_uri_and_a_missing_alias(tracking_uri):
    with pytest.raises(mlbench.ConfigError, match="is not a model URI"):
        mlbench.load_base("runs:/abc/model", tracking_uri)
    with pytest.raises(mlbench.ConfigError, match="models:/nothing@seed-0"):
        mlbench.load_base("models:/nothing@seed-0", tracking_uri)



def test_the_run_logs_its_test_predictions_without_pickle(store, tmp_path):
    from mlbench.data import split_digest
    from mlbench.predictions import PREDICTIONS, labels_digest, load_predictions

    # the module's first run (other tests add runs of other strategies to the store)
    (run,) = [r for r in runs(store, "prune") if r.info.run_name == "global_weight-c4-s0"]
    path = MlflowClient(store).download_artifacts(run.info.run_id, PREDICTIONS, tmp_path)
    p = load_predictions(path)
    assert p.predicted.dtype.kind == "i" and p.predicted.shape == p.labels.shape
    assert float(p.correct.mean()) == run.data.metrics["acc1"]  # the same argmax, every image
    test = prepare(RunConfig.from_flat(TINY)).splits.test
    assert p.split_digest == split_digest(test) and len(p.labels) == len(test)
    assert p.labels_digest == labels_digest(torch.cat([y for _, y in test.batches(64)]).numpy())


def test_the_final_evaluation_keeps_the_predictions_a_second_pass_would_make():
    """The logged predictions come from the test evaluation itself (no second pass over
    the test split): the same labels, in order, as predicting the final network again."""
    from mlbench.predictions import predict
    from mlbench.recipe import finetune

    setup = prepare(RunConfig.from_flat({**TINY, "speed_repeats": 0}))
    outcome = finetune(setup)
    assert outcome.predicted is not None
    again, labels = predict(setup.model, setup.splits.test, 32)
    assert torch.equal(outcome.predicted[0], torch.from_numpy(again))
    assert torch.equal(outcome.predicted[1], torch.from_numpy(labels))
    assert float((outcome.predicted[0] == outcome.predicted[1]).double().mean()) == \
        outcome.metrics["acc1"]
