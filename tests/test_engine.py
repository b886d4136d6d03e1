"""The engine: schedules, determinism, metrics per epoch."""

from __future__ import annotations

import pytest
import torch

from mlbench.config import DataConfig, OptimConfig
from mlbench.data import load_dataset
from mlbench.device import Precision
from mlbench.engine import fit
from mlbench.models import create_model
from mlbench.optim import lr_factor


def test_cosine_with_warmup():
    cfg = OptimConfig(epochs=10, schedule="cosine", warmup_epochs=2)
    assert lr_factor(cfg, 0, 10) == pytest.approx(1 / 20)  # first warm-up step
    assert lr_factor(cfg, 19, 10) == pytest.approx(1.0)  # end of warm-up
    assert lr_factor(cfg, 20, 10) == pytest.approx(1.0)  # cosine starts at the peak
    assert lr_factor(cfg, 60, 10) == pytest.approx(0.5)  # half way through the cosine
    assert lr_factor(cfg, 100, 10) == pytest.approx(0.0)


def test_step_and_constant():
    step = OptimConfig(epochs=10, schedule="step", step_size=3, gamma=0.1)
    assert [round(lr_factor(step, e * 5, 5), 6) for e in (0, 2, 3, 6, 9)] == [
        1.0, 1.0, 0.1, 0.01, 0.001]
    assert lr_factor(OptimConfig(schedule="constant"), 123, 5) == 1.0


def _fit_once(seed: int) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    data = DataConfig(dataset="synthetic", synthetic_shape="1x8x8", synthetic_classes=4,
                      synthetic_samples=128)
    splits = load_dataset(data, torch.device("cpu"))
    torch.manual_seed(seed)
    model = create_model("lenet", (1, 8, 8), 4)
    history: list[dict[str, float]] = []
    fit(model, splits.train, splits.val, OptimConfig(epochs=3, batch_size=16, lr=0.05),
        generator=torch.Generator().manual_seed(seed),
        precision=Precision(torch.device("cpu"), False),
        on_epoch=lambda epoch, m: history.append({"epoch": epoch, **m}))
    return model.state_dict(), history


def test_same_seed_same_weights_and_metrics():
    a, history_a = _fit_once(0)
    b, history_b = _fit_once(0)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert history_a == history_b
    c, _ = _fit_once(1)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_epoch_callback_gets_the_design_metrics():
    _, history = _fit_once(0)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    expected = {"epoch", "train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5", "lr"}
    assert set(history[0]) == expected
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine ends at zero


def _fit_with(memory_format: str = "contiguous", compile: bool = False) -> dict[str, torch.Tensor]:
    from mlbench.device import place_model

    data = DataConfig(dataset="synthetic", synthetic_shape="3x8x8", synthetic_classes=4,
                      synthetic_samples=128)
    splits = load_dataset(data, torch.device("cpu"))
    torch.manual_seed(0)
    model = place_model(create_model("resnet20", (3, 8, 8), 4), torch.device("cpu"),
                        memory_format)
    fit(model, splits.train, splits.val, OptimConfig(epochs=1, batch_size=16, lr=0.05),
        generator=torch.Generator().manual_seed(0),
        precision=Precision(torch.device("cpu"), True), compile=compile)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def test_the_gpu_switches_are_clean_no_ops_or_equivalent_on_cpu():
    cpu = Precision(torch.device("cpu"), True)  # amp asked for, on a CPU
    assert not cpu.enabled and not cpu.scaler.is_enabled()
    assert isinstance(cpu.autocast(), type(__import__("contextlib").nullcontext()))
    from mlbench.device import place_model

    model = place_model(create_model("resnet20", (3, 8, 8), 4), torch.device("cpu"),
                        "channels_last")
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    auto = place_model(create_model("resnet20", (3, 8, 8), 4), torch.device("cpu"), "auto")
    assert auto.conv1.weight.is_contiguous()  # auto: channels_last only on CUDA
    plain, last = _fit_with("contiguous"), _fit_with("channels_last")
    for key, value in plain.items():  # the same training, another layout in memory
        torch.testing.assert_close(last[key], value, atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_a_compiled_model_trains_like_the_eager_one():
    eager, compiled = _fit_with(), _fit_with(compile=True)
    for key, value in eager.items():
        torch.testing.assert_close(compiled[key], value, atol=1e-4, rtol=1e-3)
