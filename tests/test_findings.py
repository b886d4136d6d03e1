"""Findings on hand-made run tables: every claim supported, contradicted and inconclusive;
Holm's correction changes a verdict where it should; the test split's resolution holds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlbench.report.findings import (
    CLAIMS,
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    Context,
    Finding,
    claim,
    evaluate_findings,
    findings_display,
    holm,
    paired,
    resolution,
    verdict_from,
)

BASELINES = ("global_weight", "layer_weight", "global_grad", "layer_grad", "random")
COMPRESSIONS = (2.0, 8.0, 32.0)
NOISE = 0.0005  # per-run noise: far under the effects below (0.02-0.05)


def runs_table(effect: dict[str, float], *, seeds: int = 3, compressions=COMPRESSIONS,
               seed_effect: float = 0.0, dataset: str = "mnist", model: str = "mlp",
               speedup_scale: dict[str, float] | None = None, slope: float = 0.0,
               noise: float = NOISE, rng_seed: int = 0) -> pd.DataFrame:
    """Runs as the report frame has them: acc1 = 0.97 + effect[strategy] + seed term + noise.

    ``speedup_scale`` sets each strategy's speedup as scale x compression; ``slope`` makes
    accuracy fall by ``slope`` per doubling of speedup (so strategies that trade speedup
    differently can be compared at equal speedup).
    """
    rng = np.random.default_rng(rng_seed)
    rows = []
    for strategy, shift in effect.items():
        scale = (speedup_scale or {}).get(strategy, 1.0)
        for c in compressions:
            for s in range(seeds):
                speedup = scale * c
                acc = (0.97 + shift + seed_effect * (s - (seeds - 1) / 2)
                       - slope * math.log2(speedup) + rng.normal(0, noise))
                rows.append({"dataset": dataset, "model": model, "strategy": strategy,
                             "compression": c, "seed": s, "acc1": acc, "acc5": 0.999,
                             "speedup": speedup, "speedup_conv_linear": speedup,
                             "tuned": False, "recipe": "r1"})
    return pd.DataFrame(rows)


def verdict(name: str, runs: pd.DataFrame) -> Finding:
    (finding,), _ = evaluate_findings(runs, claims=[name])
    return finding


def test_the_paper_claims_are_registered():
    assert CLAIMS.names()[:5] == [
        "global_beats_layer", "layer_matches_global_at_speedup", "random_is_worst",
        "ranking_changes_between_pairs", "seed_moves_results_like_strategy"]


def test_paired_statistics_by_hand():
    c = paired("c=2", "a", "b", [0.01, 0.02, 0.03])
    # mean 0.02, sd 0.01, se 0.01/sqrt(3); t(2) 97.5% quantile 4.3027
    assert c.mean == pytest.approx(0.02) and c.std == pytest.approx(0.01)
    assert c.ci_high - c.mean == pytest.approx(4.302653 * 0.01 / math.sqrt(3), rel=1e-5)
    assert c.p == pytest.approx(0.0742, abs=1e-4)
    assert math.isnan(paired("c=2", "a", "b", [0.01, 0.02]).p)  # two seeds: not tested


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, math.nan, 0.01]) == pytest.approx([0.2, math.nan, 0.02], nan_ok=True)


def test_resolution_of_the_mnist_test_split():
    # 10,000 images at 98%: 1.96 * sqrt(2 * 0.98 * 0.02 / 10000) = 0.39 points
    assert resolution(10_000, 0.98) == pytest.approx(0.00388, abs=1e-5)
    assert resolution(359, 1.0) == pytest.approx(1 / 359)  # never under one image


@pytest.mark.parametrize(("shift", "expected"), [(0.02, SUPPORTED), (-0.02, CONTRADICTED)])
def test_global_beats_layer(shift: float, expected: str):
    runs = runs_table({"global_weight": shift, "layer_weight": 0.0,
                       "global_grad": shift, "layer_grad": 0.0})
    finding = verdict("global_beats_layer", runs)
    assert finding.verdict == expected
    assert len(finding.comparisons) == 6  # 2 allocation pairs x 3 compressions


def test_two_seeds_are_inconclusive_and_ask_for_a_third():
    runs = runs_table({"global_weight": 0.05, "layer_weight": 0.0}, seeds=2)
    finding = verdict("global_beats_layer", runs)
    assert finding.verdict == INCONCLUSIVE
    assert finding.add.startswith("seeds: 1 more")


def test_one_compression_is_inconclusive_and_asks_for_more():
    runs = runs_table({"global_weight": 0.05, "layer_weight": 0.0}, compressions=(8.0,))
    finding = verdict("global_beats_layer", runs)
    assert finding.verdict == INCONCLUSIVE and finding.add.startswith("compressions: 1 more")


def test_a_consistent_difference_under_the_resolution_is_not_evidence():
    # 0.1 points, every seed alike (p tiny), but MNIST's test split resolves ~0.4
    runs = runs_table({"global_weight": 0.001, "layer_weight": 0.0}, noise=0.00005)
    finding = verdict("global_beats_layer", runs)
    assert all(c.p_holm < 0.05 for c in finding.comparisons)
    assert finding.verdict == INCONCLUSIVE
    assert "resolution" in finding.add and "cannot" in finding.add


def test_holm_turns_a_chance_win_into_inconclusive():
    ctx = Context(resolution=0.001)
    weak = [paired(f"c={c}", "global_weight", "layer_weight", [0.02, 0.03, 0.04])
            for c in (2, 4)]
    assert all(0.03 < c.p < 0.05 for c in weak)  # each significant on its own
    alone = verdict_from("global_beats_layer", ctx, "x", weak[:1])
    together = verdict_from("global_beats_layer", ctx, "x", weak)
    assert alone.verdict == SUPPORTED
    assert together.verdict == INCONCLUSIVE  # Holm: 2 x 0.035 > 0.05
    assert all(c.p_holm > 0.05 for c in together.comparisons)


def test_holm_keeps_one_weak_counterexample_from_contradicting():
    ctx = Context(resolution=0.001)
    strong = [paired(f"c={c}", "g", "l", [0.050, 0.051, 0.049]) for c in (2, 4, 8)]
    against = paired("c=16", "g", "l", [-0.02, -0.03, -0.04])  # p = 0.035 alone
    unclear = paired("c=32", "g", "l", [0.01, -0.01, 0.002])
    assert verdict_from("global_beats_layer", ctx, "x", [against]).verdict == CONTRADICTED
    finding = verdict_from("global_beats_layer", ctx, "x", [*strong, against, unclear])
    assert finding.verdict == SUPPORTED  # 3 of 5 for; the weak one against: p_holm 0.07


SPEEDUP = {"global_weight": 2.0, "global_grad": 2.0}  # global: twice layer's speedup


@pytest.mark.parametrize(("layer_shift", "expected"),
                         [(0.0, SUPPORTED), (0.01, SUPPORTED), (-0.03, CONTRADICTED)])
def test_layer_matches_global_at_fixed_speedup(layer_shift: float, expected: str):
    # On one accuracy-vs-speedup curve, layer runs sit between global runs' speedups.
    runs = runs_table({"global_weight": 0.0, "layer_weight": layer_shift},
                      compressions=(2.0, 4.0, 8.0, 16.0), speedup_scale=SPEEDUP, slope=0.01)
    finding = verdict("layer_matches_global_at_speedup", runs)
    assert finding.verdict == expected
    assert "speedup_conv_linear" in finding.evidence
    # layer at 4x (speedup 4) meets global interpolated between its 2x (4) and 4x (8)
    assert len(finding.comparisons) == 3  # layer's speedups 2 is under global's range


def test_layer_at_speedup_is_inconclusive_when_the_intervals_are_wide():
    runs = runs_table({"global_weight": 0.0, "layer_weight": -0.004},
                      compressions=(2.0, 4.0, 8.0, 16.0), speedup_scale=SPEEDUP, slope=0.01,
                      noise=0.01)
    finding = verdict("layer_matches_global_at_speedup", runs)
    assert finding.verdict == INCONCLUSIVE and finding.add.startswith("seeds")


@pytest.mark.parametrize(("random_shift", "seeds", "expected"), [
    (-0.05, 3, SUPPORTED), (0.03, 3, CONTRADICTED), (-0.05, 2, INCONCLUSIVE)])
def test_random_is_worst(random_shift: float, seeds: int, expected: str):
    runs = runs_table({s: 0.0 for s in BASELINES[:4]} | {"random": random_shift}, seeds=seeds)
    assert verdict("random_is_worst", runs).verdict == expected


def test_ranking_changes_between_pairs():
    mnist = runs_table({"global_weight": 0.02, "layer_weight": 0.0})
    flipped = runs_table({"global_weight": 0.0, "layer_weight": 0.02}, dataset="cifar10",
                         model="resnet20")
    same = runs_table({"global_weight": 0.02, "layer_weight": 0.0}, dataset="cifar10",
                      model="resnet20")
    assert verdict("ranking_changes_between_pairs", pd.concat([mnist, flipped])
                   ).verdict == SUPPORTED
    assert verdict("ranking_changes_between_pairs", pd.concat([mnist, same])
                   ).verdict == CONTRADICTED
    one = verdict("ranking_changes_between_pairs", mnist)
    assert one.verdict == INCONCLUSIVE and one.add.startswith("pairs")


@pytest.mark.parametrize(("seed_effect", "seeds", "expected"), [
    (0.02, 3, SUPPORTED), (0.0, 3, CONTRADICTED), (0.02, 2, INCONCLUSIVE)])
def test_seed_moves_results_like_strategy(seed_effect: float, seeds: int, expected: str):
    runs = runs_table({"global_weight": 0.03, "layer_weight": 0.0, "global_grad": 0.015},
                      seeds=seeds, seed_effect=seed_effect)
    assert verdict("seed_moves_results_like_strategy", runs).verdict == expected


def test_runs_of_another_recipe_or_tuned_are_left_out():
    runs = runs_table({"global_weight": 0.02, "layer_weight": 0.0})
    other = runs.assign(recipe="r2", acc1=runs["acc1"] - 0.5).iloc[:4]
    tuned = runs.assign(tuned=True, acc1=0.1).iloc[:3]
    findings, notes = evaluate_findings(pd.concat([runs, other, tuned]),
                                        claims=["global_beats_layer"])
    assert findings[0].verdict == SUPPORTED
    assert any("1 other fine-tuning recipe(s) (4 runs) left out" in n for n in notes)
    assert any("3 tuned run(s) left out" in n for n in notes)


def test_a_new_claim_is_one_registered_function():
    name = "global_weight_beats_random_test_only"

    @claim(name, "global weight beats random")
    def _beats(runs: pd.DataFrame, ctx: Context) -> Finding:
        from mlbench.report.findings._claims import at_compressions, scope_of

        comparisons = at_compressions(runs, "global_weight", "random", ctx.metric)
        return verdict_from(name, ctx, scope_of(runs), comparisons)

    try:
        runs = runs_table({"global_weight": 0.0, "random": -0.05})
        findings, _ = evaluate_findings(runs)
        assert [f.verdict for f in findings if f.claim == name] == [SUPPORTED]
        shown = findings_display(findings)
        assert list(shown.columns) == ["claim", "runs", "verdict", "evidence",
                                       "what would settle it"]
    finally:
        CLAIMS._items.pop(name), CLAIMS._meta.pop(name)


def test_a_compression_with_too_few_seeds_does_not_count():
    # 32x with 3 seeds, 8x with one: one tested compression, and the claim needs two
    runs = pd.concat([runs_table({"global_weight": 0.05, "layer_weight": 0.0},
                                 compressions=(32.0,)),
                      runs_table({"global_weight": 0.05, "layer_weight": 0.0},
                                 compressions=(8.0,), seeds=1)])
    for name in ("global_beats_layer", "seed_moves_results_like_strategy"):
        finding = verdict(name, runs)
        assert finding.verdict == INCONCLUSIVE and finding.add.startswith("compressions: 1")
