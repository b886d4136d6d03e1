"""The calibrated kind on the strategy-kind contract: checks, prune, sizes, save/load."""

from __future__ import annotations

import math

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import save_file

from mlbench import catalog, recipe
from mlbench.calibrated import prunable_linears
from mlbench.calibrated._names import STRATEGY_NAMES
from mlbench.cli import main
from mlbench.config import RunConfig
from mlbench.device import Precision
from mlbench.engine import evaluate
from mlbench.errors import ConfigError
from mlbench.kinds import kind_of, to_cpu
from mlbench.recipe import finetune, prepare, trains
from mlbench.speed import FLOOR_S, cost_cap, speed_budget
from tests.test_text_data import write_corpus


def cfg(folder, **kw) -> RunConfig:
    values = {"dataset": "text", "data_dir": str(folder), "seq_len": 16, "model": "chargpt",
              "strategy": "wanda", "compression": 2.0, "epochs": 0, "batch_size": 16,
              "device": "cpu", "calib_samples": 8, "calib_seq_len": 16, "speed_repeats": 1,
              **kw}
    return RunConfig.from_flat(values)


@pytest.fixture
def corpus(tmp_path):
    write_corpus(tmp_path)
    return tmp_path


def test_names_are_the_kinds_and_the_catalogs():
    kind = kind_of("wanda")
    assert kind.name == "calibrated" and tuple(kind.strategies()) == STRATEGY_NAMES
    assert set(STRATEGY_NAMES) <= set(catalog.names("strategy"))


@pytest.mark.parametrize("strategy", ["pt_magnitude", "wanda", "sparsegpt_2_4"])
def test_mask_strategies_prune_half_of_every_block_linear(corpus, strategy):
    setup = prepare(cfg(corpus, strategy=strategy))
    out = finetune(setup)
    assert out.metrics["linear_sparsity"] == pytest.approx(0.5)
    assert 1 < out.metrics["compression"] < 2  # embeddings and norms stay dense
    assert out.metrics["speedup"] > 1 and math.isfinite(out.metrics["bpc"])
    assert {"acc1", "acc5", "loss", "pre_acc1", "base_acc1", "macs", "macs_nz"} <= set(
        out.metrics)
    for name, layer in prunable_linears(out.pruned.model).items():
        assert torch.equal(layer.weight != 0, out.pruned.masks[f"{name}.weight"]) or bool(
            (layer.weight[~out.pruned.masks[f"{name}.weight"]] == 0).all())


def test_recovery_finetuning_holds_the_masks(corpus):
    setup = prepare(cfg(corpus, strategy="sparsegpt", epochs=1, lr=1e-3, optimizer="adamw"))
    out = finetune(setup)
    for name, layer in prunable_linears(out.pruned.model).items():
        assert bool((layer.weight[~out.pruned.masks[f"{name}.weight"]] == 0).all())
    assert out.metrics["linear_sparsity"] == pytest.approx(0.5)


@pytest.mark.parametrize("strategy", ["remove_heads", "remove_neurons", "wanda_4_8"])
def test_saved_network_loads_without_pickle_and_computes_the_same(corpus, tmp_path_factory,
                                                                  strategy):
    setup = prepare(cfg(corpus, strategy=strategy))
    out = finetune(setup)
    kind = kind_of(strategy)
    folder = tmp_path_factory.mktemp("saved")
    kind.save(out.pruned, setup, folder, {"strategy": strategy})
    save_file(to_cpu(setup.model), str(folder / "weights.safetensors"))
    info = setup.splits.info
    config = {**setup.cfg.flat(), "input_shape": list(info.input_shape),
              "num_classes": info.num_classes}
    again = kind.load(folder, config).eval()
    x, _ = next(setup.splits.test.batches(4))
    with torch.no_grad():
        assert torch.allclose(again(x), setup.model.eval()(x), atol=1e-6)
    if strategy != "wanda_4_8":
        assert out.metrics["params_nz"] < out.metrics["params"]
        assert out.metrics["compression"] == pytest.approx(
            out.metrics["params"] / sum(p.numel() for p in again.parameters()))


def test_bad_targets_and_models_are_refused_before_any_work(corpus):
    with pytest.raises(ConfigError, match="N:M pattern is its own target"):
        prepare(cfg(corpus, strategy="wanda_2_4", compression=3.0))
    with pytest.raises(ConfigError, match="exceeds the model's context"):
        prepare(cfg(corpus, calib_seq_len=32))
    with pytest.raises(ConfigError, match="has no `blocks`"):
        prepare(RunConfig.from_flat({"dataset": "digits", "model": "lenet", "strategy": "wanda",
                                     "device": "cpu"}))


def test_calibration_params_are_in_the_hash_only_when_set(corpus):
    base = cfg(corpus)
    assert "calib_seed" not in base.run_key()
    assert cfg(corpus, calib_seed=1).run_hash() != base.run_hash()
    assert cfg(corpus, calib_samples=9).run_hash() != base.run_hash()
    assert RunConfig().run_key().keys().isdisjoint({"calib_seed", "seq_len", "eval_chars"})


def test_a_tracked_post_training_run_logs_its_measured_speedup_and_cap(corpus, tmp_path):
    """No fine-tuning: 4% of a run of seconds would leave no time to measure; the floor
    gives it an interval, and the run says which cost cap it got."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["prune", "--dataset", "text", "--data-dir", str(corpus), "--seq-len", "16",
            "--model", "chargpt", "--strategy", "wanda", "--compression", "2",
            "--epochs", "0", "--batch-size", "16", "--base-epochs", "1",
            "--base-batch-size", "16", "--calib-samples", "8", "--calib-seq-len", "16",
            "--device", "cpu", "--tracking-uri", uri]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: no stalls between threads on a shared machine
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")
    m = run.data.metrics
    assert m["speed_budget_seconds"] >= FLOOR_S
    for suffix in ("", "_throughput"):
        est, lo, hi = (m[f"measured_speedup{suffix}{s}"] for s in ("", "_lo", "_hi"))
        assert all(math.isfinite(v) for v in (est, lo, hi)) and lo <= est <= hi
    assert run.data.params["speed_cost_cap"] == cost_cap(trains=False)
    assert f"{FLOOR_S:g} s" in run.data.params["speed_cost_cap"]


def test_only_runs_that_train_nothing_get_the_floor():
    assert speed_budget(10.0, trains=True) == pytest.approx(0.4)  # 4% of the run, no floor
    assert speed_budget(10.0, trains=False) == FLOOR_S
    assert speed_budget(1000.0, trains=False) == pytest.approx(40.0)  # the share, if larger
    finetuned = RunConfig.from_flat({"epochs": 1})
    assert trains(finetuned) and not trains(RunConfig.from_flat({"epochs": 0}))
    assert cost_cap(trains(finetuned)) == "4% of the run's own time"


def test_without_fine_tuning_the_pruned_network_is_evaluated_once(corpus, monkeypatch):
    """Post-training with --epochs 0: the final numbers are the pruned network's, read
    once (base and pruned: two passes over test, not three); with recovery, three."""
    calls = []

    def counted(model, split, *args, **kwargs):
        calls.append(split)
        return evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(recipe, "evaluate", counted)
    setup = prepare(cfg(corpus, speed_repeats=0))
    out = finetune(setup)
    assert len(calls) == 2 and all(split is setup.splits.test for split in calls)
    again = evaluate(setup.model, setup.splits.test, 16, Precision(setup.device, False))
    for key in ("acc1", "acc5", "loss", "bpc"):
        assert out.metrics[key] == again[key]
    assert out.metrics["acc1"] == out.metrics["pre_acc1"]
    calls.clear()
    finetune(prepare(cfg(corpus, epochs=1, lr=1e-3, optimizer="adamw", speed_repeats=0)))
    assert len(calls) == 3
