"""Findings on hand-made run tables (seed-only: no predictions): every claim supported,
contradicted and inconclusive; "every compression" is an intersection-union test; Holm
guards contradictions; seeds needed from t quantiles. Stores with per-image predictions:
tests/test_findings_store.py."""

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
    UNTESTABLE,
    Context,
    Finding,
    claim,
    evaluate_findings,
    findings_display,
    holm,
    paired,
    seeds_needed,
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


def test_seeds_needed_from_t_quantiles():
    # mean 1, sd 1: the first n with t(0.975, n-1) / sqrt(n) < 1 is 7 (2.776/2.236 = 1.24
    # at 5, 2.571/2.449 = 1.05 at 6, 2.447/2.646 = 0.92 at 7)
    c = paired("c=2", "a", "b", [0.0, 1.0, 2.0])
    assert c.std == pytest.approx(1.0) and c.mean == pytest.approx(1.0)
    assert seeds_needed(c) == 7
    # the normal approximation (1.96^2 = 3.84 -> 4 + 1) would say 5 and miss
    assert 4.302653 / math.sqrt(3) > 1 and 2.446912 / math.sqrt(7) < 1 < 2.570582 / math.sqrt(6)


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


def test_every_compression_is_an_intersection_union_test():
    # strong at 2 and 8, nothing at 32: "at every compression" is not supported (the old
    # rule, half of the comparisons significant, called it supported)
    strong = [paired(f"c={c}", "g", "l", [0.050, 0.051, 0.049]) for c in (2, 8)]
    flat = paired("c=32", "g", "l", [0.001, -0.001, 0.0005])
    finding = verdict_from("global_beats_layer", Context(), "x", [*strong, flat])
    assert finding.verdict == INCONCLUSIVE
    assert finding.evidence.startswith("2 of 3 comparisons significantly for")
    assert "c=32" in finding.add
    assert verdict_from("global_beats_layer", Context(), "x", strong).verdict == SUPPORTED


def test_each_point_at_alpha_without_holm_but_holm_guards_a_contradiction():
    weak = [paired(f"c={c}", "global_weight", "layer_weight", [0.02, 0.03, 0.04])
            for c in (2, 4)]
    assert all(0.03 < c.p < 0.05 for c in weak)  # each significant on its own
    together = verdict_from("global_beats_layer", Context(), "x", weak)
    assert together.verdict == SUPPORTED  # IUT: each at alpha, no correction due
    assert all(c.p_holm > 0.05 for c in together.comparisons)
    strong = [paired(f"c={c}", "g", "l", [0.050, 0.051, 0.049]) for c in (2, 4, 8)]
    against = paired("c=16", "g", "l", [-0.02, -0.03, -0.04])  # p = 0.035 alone
    unclear = paired("c=32", "g", "l", [0.01, -0.01, 0.002])
    assert verdict_from("global_beats_layer", Context(), "x", [against]).verdict == CONTRADICTED
    finding = verdict_from("global_beats_layer", Context(), "x", [*strong, against, unclear])
    assert finding.verdict == INCONCLUSIVE  # against: p_holm 0.07, not a contradiction


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
        from mlbench.report.findings import at_compressions
        from mlbench.report.findings._claims import scope_of

        comparisons = at_compressions(runs, "global_weight", "random", ctx)
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


def test_equal_speedups_make_the_speedup_claim_not_testable():
    # global and layer at the same speedup at every compression (an MLP): one claim, said once
    runs = runs_table({"global_weight": 0.02, "layer_weight": 0.0})
    finding = verdict("layer_matches_global_at_speedup", runs)
    assert finding.verdict == UNTESTABLE and not finding.comparisons
    assert "global beats layer allocation at fixed compression" in finding.evidence
    assert verdict("global_beats_layer", runs).verdict == SUPPORTED


def test_the_ranking_averages_only_compressions_every_seed_ran():
    # seed 2 lacks c=32, where layer_weight is far better: averaging seeds 0-1 over
    # {2, 8, 32} and seed 2 over {2, 8} would mix different averages
    runs = runs_table({"global_weight": 0.02, "layer_weight": 0.0})
    runs.loc[(runs["compression"] == 32) & (runs["strategy"] == "layer_weight"), "acc1"] += 0.2
    runs = runs[~((runs["compression"] == 32) & (runs["seed"] == 2))]
    from mlbench.report.findings import over_complete_compressions

    c, used = over_complete_compressions(runs, "global_weight", "layer_weight", Context(), "x")
    assert used == [2.0, 8.0] and c.n == 3
    assert c.mean == pytest.approx(0.02, abs=0.002)


def test_the_seed_claims_count_matches_its_own_p_values():
    runs = runs_table({"global_weight": 0.03, "layer_weight": 0.0, "global_grad": 0.015},
                      seed_effect=0.002, noise=0.0002)
    finding = verdict("seed_moves_results_like_strategy", runs)
    significant = sum(c.p_holm < 0.05 for c in finding.comparisons)
    assert significant == len(finding.comparisons) == 3  # a small but clear seed effect
    assert f"significant (Holm, F-test) at {significant} of 3" in finding.evidence
    assert finding.verdict == INCONCLUSIVE  # significant, but smaller than the strategies'


def test_the_test_images_variance_counts_where_seeds_agree():
    from mlbench.report.findings import paired_images

    # a is right on the same 3 of 10,000 images at every seed: seeds alone call it certain
    x = np.zeros((3, 10_000))
    x[:, :3] = 1
    assert paired("c=2", "a", "b", x.mean(axis=1)).p == 0.0
    c = paired_images("c=2", "a", "b", x)
    # image part: var over images of the per-image means (3 ones) / N; McNemar's for b=3, c=0
    image_var = (3 / 10_000 - (3 / 10_000) ** 2) * 10_000 / 9_999 / 10_000
    assert c.image_se == pytest.approx(math.sqrt(image_var))
    assert c.mean == pytest.approx(0.0003) and c.p > 0.05  # t = 1.73: not evidence
    assert c.method == "seeds+images" and c.df > 1000
