"""The paper's MNIST pairs: LeNet-5-Caffe as published, the presets reach their grids, and a
small sweep through the real torchvision loader on the real MNIST in ../shared/data."""

from __future__ import annotations

import pytest
import torch
from mlflow import MlflowClient

from mlbench.cli import main
from mlbench.masks import keep_count, prunable_parameters
from mlbench.models import classifier_name, create_model
from mlbench.presets import load_preset
from tests.conftest import REPO, SHARED_DATA

MNIST = SHARED_DATA / "MNIST" / "raw"


def test_lenet5_caffe_is_the_published_network():
    model = create_model("lenet5_caffe", (1, 28, 28), 10)
    shapes = [tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")]
    assert shapes == [(20, 1, 5, 5), (50, 20, 5, 5), (500, 800), (10, 500)]
    assert sum(p.numel() for p in model.parameters()) == 431_080
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize(("preset", "model", "params"), [
    ("mnist-lenet300", "mlp", 266_610), ("mnist-lenet5", "lenet5_caffe", 431_080)])
def test_presets_reach_the_papers_operating_points(preset: str, model: str, params: int):
    values = load_preset(REPO / "projects" / f"{preset}.yaml")
    assert values["dataset"] == "mnist" and values["model"] == model
    assert values["compressions"] == [2, 4, 8, 16, 32, 64] and values["seeds"] == [0, 1, 2]
    net = create_model(model, (1, 28, 28), 10)
    assert sum(p.numel() for p in net.parameters()) == params
    prunable = prunable_parameters(net, classifier_name(net))
    for c in values["compressions"]:
        keep = keep_count(net, prunable, float(c))
        assert 1 <= keep < sum(p.numel() for p in prunable.values())


@pytest.mark.slow
def test_a_small_mnist_sweep_through_the_real_loader(tmp_path, monkeypatch, capsys):
    if not (MNIST / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"the real MNIST is not in {MNIST}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["sweep", "--project", str(REPO / "projects" / "mnist-lenet300.yaml"),
            "--data-dir", str(SHARED_DATA), "--base-epochs", "1", "--epochs", "1",
            "--strategies", "global_weight,layer_weight", "--compressions", "16",
            "--seeds", "0", "--device", "cpu", "--tracking-uri", uri]
    assert main(argv) == 0
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")
    assert sorted(r.data.params["strategy"] for r in runs) == ["global_weight", "layer_weight"]
    for run in runs:
        m = run.data.metrics
        assert run.data.params["data_dir"] == str(SHARED_DATA)
        assert m["base_acc1"] > 0.93  # one epoch of LeNet-300-100 on the real MNIST
        assert m["acc1"] > 0.9 and m["compression"] == pytest.approx(16, rel=1e-3)
        assert round(m["acc1"] * 10_000, 6) == round(m["acc1"] * 10_000)  # 10,000 test images
        assert m["speedup_conv_linear"] > 1 and m["macs_conv_linear"] <= m["macs"]
    assert "sweep done: all 4 items" in capsys.readouterr().out  # sweep run, base, 2 cells
