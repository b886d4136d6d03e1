"""A tiny end-to-end run of each post-training preset: the preset's own recipe and grid
keys, shrunk (few characters, one epoch, two strategies, two calibration seeds, a
two-point curve), through `mlbench sweep` into a real MLflow store, then `findings`."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from mlflow import MlflowClient

from mlbench.cli import main
from tests.conftest import REPO, SHARED_DATA

SMALL = {"base_epochs": 1, "seeds": [0], "calib_seeds": [0, 1], "compressions": [2],
         "strategies": ["wanda", "sparsegpt_2_4"], "curve_strategies": ["pt_magnitude",
                                                                       "remove_heads"],
         "curve_compressions": [1.25, 2], "calib_samples": 8, "speed_repeats": 1}
PRESETS = {
    "shakespeare-chargpt": {"train_chars": 20_000, "eval_chars": 3_000, "seq_len": 32,
                            "calib_seq_len": 32},
    # digits stands in for MNIST here: the same ViT, 8x8 inputs, seconds instead of minutes
    "mnist-vit": {"dataset": "digits", "base_batch_size": 64, "batch_size": 64},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_preset_sweeps_end_to_end_and_findings_print_verdicts(name, tmp_path, capsys):
    if not (SHARED_DATA / "shakespeare").is_dir():
        pytest.skip("needs ../shared/data")
    preset = yaml.safe_load((REPO / "projects" / f"{name}.yaml").read_text())
    preset.update(SMALL | PRESETS[name])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(preset))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["sweep", "--project", str(path), "--data-dir", str(SHARED_DATA),
                 "--device", "cpu", "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'")
    cells = {(r.data.params["strategy"], float(r.data.params["compression"]),
              r.data.params["calib_seed"]) for r in runs}
    assert cells == {("wanda", 2.0, "0"), ("wanda", 2.0, "1"), ("sparsegpt_2_4", 2.0, "0"),
                     ("sparsegpt_2_4", 2.0, "1"), ("pt_magnitude", 1.25, "0"),
                     ("pt_magnitude", 2.0, "0"), ("remove_heads", 1.25, "0"),
                     ("remove_heads", 2.0, "0")}
    assert len({r.info.run_name for r in runs}) == len(runs)  # calibration seeds named
    for run in runs:
        assert run.info.status == "FINISHED"
        assert 0 <= run.data.metrics["acc1"] <= 1 and run.data.metrics["params_nz"] > 0
        assert ("bpc" in run.data.metrics) == (name == "shakespeare-chargpt")
        assert run.data.params["speed_kernels"].startswith("dense")
        assert run.data.params["speed_cost_cap"].startswith("the larger of")  # epochs 0
    assert len(client.search_runs(ids, "tags.`mlbench.stage` = 'train'")) == 1
    capsys.readouterr()
    assert main(["findings", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "Wanda and SparseGPT beat magnitude at 50% unstructured" in out
    assert "2:4 costs more accuracy than 50% unstructured" in out


@pytest.mark.parametrize("name", PRESETS)
def test_each_recovery_preset_reuses_its_presets_base_models(name):
    """`<preset>-recovery` differs from its preset only in recovery fine-tuning and the
    grid: the same base key, so a sweep of it reuses the base models already registered
    (and its runs pair with the preset's by base_run_id)."""
    from mlbench.config import RunConfig
    from mlbench.presets import EXTRA_KEYS, load_preset

    def cfg(preset: str) -> RunConfig:
        values = load_preset(REPO / "projects" / f"{preset}.yaml")
        return RunConfig.from_flat({k: v for k, v in values.items() if k not in EXTRA_KEYS})

    plain, recovery = cfg(name), cfg(f"{name}-recovery")
    assert plain.base_hash() == recovery.base_hash()
    assert plain.finetune.epochs == 0 and recovery.finetune.epochs == 1
    assert dataclasses.replace(recovery, finetune=plain.finetune) == plain
