"""Findings from real MLflow stores whose runs carry simulated test predictions with a known
effect: paired over seeds and test images, the old fixed cutoff's blind spot, "every" as an
intersection-union test, runs without predictions (seed-only, said), unpaired base models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from mlbench.config import RunConfig, config_hash
from mlbench.predictions import PREDICTIONS, save_predictions
from mlbench.report.findings import INCONCLUSIVE, SUPPORTED, Finding
from mlbench.report.findings_files import findings_from_store

N = 10_000  # MNIST's test split
LABELS = np.random.default_rng(0).integers(0, 10, N)
BASE_ACC = 0.98
# The fixed "resolution" the findings used before: 1.96 sqrt(2 p (1 - p) / N) at 98%
OLD_CUTOFF = 1.959964 * math.sqrt(2 * BASE_ACC * (1 - BASE_ACC) / N)  # 0.39 points


def correctness(seed: int, compression: float, net_gain: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) per-image correctness: b at 98%, a right on ``35 + net_gain`` images b gets
    wrong and wrong on 35 that b gets right (the images the two disagree on)."""
    b = np.ones(N, bool)
    b[rng.choice(N, int(N * (1 - BASE_ACC)), replace=False)] = False
    a = b.copy()
    wrong, right = np.flatnonzero(~b), np.flatnonzero(b)
    gain = net_gain + int(rng.integers(-2, 3))  # the seed moves it a little
    a[rng.choice(wrong, 35 + gain, replace=False)] = True
    a[rng.choice(right, 35, replace=False)] = False
    return b, a


def log_run(client: MlflowClient, experiment: str, strategy: str, c: float, seed: int,
            base: str, correct: np.ndarray, tmp: Path, predictions: bool) -> None:
    cfg = RunConfig().flat() | {"dataset": "mnist", "model": "mlp", "strategy": strategy,
                                "compression": c, "seed": seed}
    run = client.create_run(experiment, run_name=f"{strategy}-c{c:g}-s{seed}",
                            tags={"mlbench.stage": "prune",
                                  "mlbench.config_hash": config_hash(cfg)})
    acc1 = float(correct.mean())
    metrics = {"acc1": acc1, "acc5": 1.0, "base_acc1": BASE_ACC, "params": 1000,
               "params_nz": 1000 / c, "compression": c, "macs": 1e6, "macs_nz": 1e6 / c,
               "speedup": c, "speedup_conv_linear": c}
    client.log_batch(run.info.run_id, [Metric(k, v, 0, 0) for k, v in metrics.items()],
                     [Param(k, str(v)) for k, v in cfg.items()] + [Param("base_run_id", base)])
    if predictions:
        predicted = np.where(correct, LABELS, (LABELS + 1) % 10)
        path = save_predictions(predicted, LABELS, tmp / PREDICTIONS, "digest-of-the-split")
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)


def fill(uri: str, tmp: Path, experiment: str, gains: dict[float, int], *,
         predictions: bool = True, other_base_seed: int | None = None) -> None:
    """global_weight (a) vs layer_weight (b) at each compression, seeds 0-2."""
    client = MlflowClient(uri)
    eid = client.create_experiment(experiment, artifact_location=str(tmp / experiment))
    rng = np.random.default_rng(len(experiment))
    for seed in range(3):
        base = f"base{seed}"
        for c, gain in gains.items():
            b, a = correctness(seed, c, gain, rng)
            other = f"other{seed}" if seed == other_base_seed else base
            log_run(client, eid, "layer_weight", c, seed, other, b, tmp, predictions)
            log_run(client, eid, "global_weight", c, seed, base, a, tmp, predictions)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("findings")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    fill(uri, tmp, "hidden", {2.0: 20, 8.0: 20})  # +0.2 points at both
    fill(uri, tmp, "iut", {2.0: 30, 8.0: 30, 32.0: 0})  # nothing at 32x
    fill(uri, tmp, "old", {2.0: 20, 8.0: 20}, predictions=False)
    fill(uri, tmp, "bases", {2.0: 30, 8.0: 30}, other_base_seed=2)
    fill(uri, tmp, "same-images", {2.0: 0, 8.0: 0})  # no effect
    return uri


def global_beats_layer(uri: str, experiment: str) -> tuple[Finding, list[str]]:
    result = findings_from_store([experiment], "", uri)
    (finding,) = [f for f in result.findings if f.claim == "global_beats_layer"]
    return finding, result.notes


def test_a_difference_under_the_old_cutoff_is_found_by_the_paired_test(store):
    finding, notes = global_beats_layer(store, "hidden")
    assert finding.verdict == SUPPORTED
    for c in finding.comparisons:
        assert c.method == "seeds+images" and c.n == 3 and c.images == N
        assert 0.0015 < c.mean < 0.0025 < OLD_CUTOFF  # +0.2 points, under 0.39
        assert c.p < 0.05 and c.image_se > 0
    assert "seed-only" not in finding.evidence
    assert not [n for n in notes if "without test predictions" in n]


def test_every_compression_fails_where_one_compression_does(store):
    finding, _ = global_beats_layer(store, "iut")
    assert finding.verdict == INCONCLUSIVE  # supported at 2x and 8x, not at 32x
    by_where = {c.where: c for c in finding.comparisons}
    assert by_where["c=2"].p < 0.05 and by_where["c=8"].p < 0.05
    assert by_where["c=32"].p > 0.05
    assert finding.evidence.startswith("2 of 3 comparisons significantly for")
    assert "c=32" in finding.add


def test_runs_without_predictions_fall_back_to_seeds_and_say_so(store):
    finding, notes = global_beats_layer(store, "old")
    assert all(c.method == "seeds" and math.isnan(c.image_se) for c in finding.comparisons)
    assert "seed-only (no per-image test predictions behind them" in finding.evidence
    assert any("12 of 12 run(s) without test predictions" in n for n in notes)


def test_runs_of_different_base_models_are_not_paired(store):
    finding, _ = global_beats_layer(store, "bases")
    assert all(c.n == 2 and c.unpaired == 1 for c in finding.comparisons)
    assert finding.verdict == INCONCLUSIVE  # two paired seeds: not tested
    assert "not paired: the two runs come from different base models" in finding.evidence


def test_no_effect_is_not_supported(store):
    finding, _ = global_beats_layer(store, "same-images")
    assert finding.verdict != SUPPORTED
    assert all(c.ci_low < 0.0005 for c in finding.comparisons)


def test_the_comparison_table_counts_the_images_too(store):
    from mlbench.report import load_runs, paired_comparison, usable_runs
    from mlbench.report.findings_files import logged_predictions

    runs = usable_runs(load_runs(["hidden"], "", store)).runs
    with_images = paired_comparison(runs, ("acc1",), logged_predictions(store, runs["run_id"]))
    seeds_only = paired_comparison(runs, ("acc1",))
    assert set(with_images["method"]) == {"seeds+images"} and set(seeds_only["method"]) == {
        "seeds"}
    # same means; the images widen (or keep) what the seeds alone would say
    assert (with_images["diff_mean"] - seeds_only["diff_mean"]).abs().max() < 1e-12
    assert ((with_images["ci_high"] - with_images["ci_low"])
            >= (seeds_only["ci_high"] - seeds_only["ci_low"]) - 1e-3).all()
