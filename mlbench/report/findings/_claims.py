"""The paper's claims (Blalock et al. 2020, Section 4-7), one registered function each.

Each takes prune runs (the report frame: one row per run, one fine-tuning recipe per
(dataset, model)) and a Context, and returns a Finding through the rules of ``_core``.
Adding a claim is one more decorated function here or anywhere imported before use.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlbench.report.findings._core import (
    ACROSS,
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    Context,
    Finding,
    claim,
    method_note,
    non_inferior,
    not_testable,
    significant,
    verdict_from,
)
from mlbench.report.findings._pairs import at_compressions, at_speedups, over_complete_compressions
from mlbench.report.findings._stats import ALPHA, MIN_SEEDS, Paired, with_holm

ALLOCATION_PAIRS = (("global_weight", "layer_weight"), ("global_grad", "layer_grad"))
MIN_COMPRESSIONS = 2
SAME_SPEEDUP = 1e-3  # relative: global and layer "have the same speedup" within this


def tested_groups(comparisons: list[Paired]) -> int:
    """Compressions (or speedup points) with at least one comparison of MIN_SEEDS seeds."""
    return len({c.where for c in comparisons if c.n >= MIN_SEEDS})


def scope_of(runs: pd.DataFrame) -> str:
    """``mnist / mlp`` for one pair's runs."""
    pairs = runs[["dataset", "model"]].drop_duplicates()
    if len(pairs) == 1:
        return f"{pairs.iloc[0, 0]} / {pairs.iloc[0, 1]}"
    return f"{len(pairs)} (dataset, model) pairs"


@claim("global_beats_layer", "global beats layer allocation at fixed compression")
def global_beats_layer(runs: pd.DataFrame, ctx: Context) -> Finding:
    """global_X - layer_X at each compression, for X in weight and grad."""
    present = set(runs["strategy"])
    comparisons = [c for g, lay in ALLOCATION_PAIRS if {g, lay} <= present
                   for c in at_compressions(runs, g, lay, ctx)]
    groups = tested_groups(comparisons)
    return verdict_from("global_beats_layer", ctx, scope_of(runs), comparisons,
                        min_groups=MIN_COMPRESSIONS, groups=groups)


@claim("layer_matches_global_at_speedup",
       "layer matches or beats global allocation at fixed theoretical speedup")
def layer_matches_global_at_speedup(runs: pd.DataFrame, ctx: Context) -> Finding:
    """layer_X - global_X at each layer run's speedup, global interpolated on log speedup.

    Where global and layer allocation reach the same speedup at every compression (an
    MLP: its MACs follow its weights), "at fixed speedup" is "at fixed compression" again,
    already judged by ``global_beats_layer``: the claim is not testable on that model.
    """
    name = "layer_matches_global_at_speedup"
    column = speedup_column(runs)
    runs = runs[runs[column].notna()]  # issue 19: runs without it are named, left out
    present = set(runs["strategy"])
    pairs = [(g, lay) for g, lay in ALLOCATION_PAIRS if {g, lay} <= present]
    distinct = [(g, lay) for g, lay in pairs if not same_speedups(runs, g, lay, column)]
    if pairs and not distinct:
        return not_testable(name, scope_of(runs), (
            f"global and layer allocation have the same {column} at every compression "
            "(within 0.1%), so at fixed speedup this is the fixed-compression comparison "
            "again (see: global beats layer allocation at fixed compression)"))
    comparisons = [c for g, lay in distinct for c in at_speedups(runs, lay, g, ctx, column)]
    finding = non_inferior(name, ctx, scope_of(runs), comparisons,
                           groups=tested_groups(comparisons))
    finding.evidence += f" (speedup: {column})"
    return finding


def same_speedups(runs: pd.DataFrame, a: str, b: str, column: str) -> bool:
    """True when ``a`` and ``b`` have the same mean ``column`` at every shared compression."""
    means = runs[runs["strategy"].isin([a, b])].pivot_table(
        index="compression", columns="strategy", values=column, aggfunc="mean").dropna()
    if means.empty:
        return False
    ratio = (means[a] / means[b]).to_numpy(float)
    return bool(np.all(np.abs(ratio - 1) <= SAME_SPEEDUP))


def speedup_column(runs: pd.DataFrame) -> str:
    """The paper's conv+linear speedup; runs without it are named on stderr (issue 19)."""
    from mlbench.report.convention import speedup_column as convention

    return convention(runs, "findings: speedup")


@claim("random_is_worst", "random pruning is the worst strategy at every compression")
def random_is_worst(runs: pd.DataFrame, ctx: Context) -> Finding:
    """X - random at each compression, for every other strategy X."""
    others = sorted(set(runs["strategy"]) - {"random"})
    comparisons = ([c for s in others for c in at_compressions(runs, s, "random", ctx)]
                   if "random" in set(runs["strategy"]) else [])
    groups = tested_groups(comparisons)
    return verdict_from("random_is_worst", ctx, scope_of(runs), comparisons,
                        min_groups=MIN_COMPRESSIONS, groups=groups)


@claim("ranking_changes_between_pairs",
       "the ranking of strategies changes between (dataset, model) pairs", scope=ACROSS)
def ranking_changes_between_pairs(runs: pd.DataFrame, ctx: Context) -> Finding:
    """Per pair and per two strategies, the per-seed mean over the compressions every seed ran.

    Supported when some two strategies are significantly ordered one way in one pair and
    the other way in another; contradicted when every two strategies are significantly
    ordered, the same way, in every pair; inconclusive otherwise.
    """
    name = "ranking_changes_between_pairs"
    statement = "the ranking of strategies changes between (dataset, model) pairs"
    pairs = runs.groupby(["dataset", "model"])
    finding = Finding(name, statement, scope_of(runs), INCONCLUSIVE, "")
    if pairs.ngroups < 2:
        finding.evidence = f"{pairs.ngroups} (dataset, model) pair in the runs"
        finding.add = "pairs: sweep a second (dataset, model) with the same strategies"
        return finding
    comparisons = with_holm([c for key, group in pairs for c in _overall(group, key, ctx)])
    finding.comparisons = comparisons
    tested = [c for c in comparisons if not math.isnan(c.p)]
    if not tested:
        finding.evidence = f"fewer than {MIN_SEEDS} paired seeds in every pair"
        finding.add = f"seeds: {MIN_SEEDS} per cell in each pair"
        return finding
    order: dict[tuple[str, str], dict[str, int]] = {}
    for c in tested:
        order.setdefault((c.a, c.b), {})[c.where] = significant(c)
    flips = [k for k, v in order.items() if 1 in v.values() and -1 in v.values()]
    everywhere = all(len(v) == pairs.ngroups and len(set(v.values())) == 1 and 0 not in v.values()
                     for v in order.values())
    finding.evidence = (f"{pairs.ngroups} pairs, {len(order)} strategy pairs: "
                        f"{len(flips)} reversed significantly (Holm)"
                        + (f": {', '.join(f'{a} vs {b}' for a, b in flips)}" if flips else "")
                        + "; each pair's mean over the compressions every seed ran"
                        + method_note(comparisons))
    if flips:
        finding.verdict = SUPPORTED
    elif everywhere:
        finding.verdict = CONTRADICTED
    else:
        finding.add = "seeds: more paired seeds per pair would sharpen the orderings"
    return finding


def _overall(runs: pd.DataFrame, key: tuple[str, str], ctx: Context) -> list[Paired]:
    """a - b averaged per seed over the compressions every seed ran, for every two strategies."""
    names = sorted(set(runs["strategy"]))
    return [over_complete_compressions(runs, a, b, ctx, f"{key[0]} / {key[1]}")[0]
            for i, a in enumerate(names) for b in names[i + 1:]]


@claim("seed_moves_results_like_strategy",
       "the dense model's seed moves results as much as the choice of strategy")
def seed_moves_results_like_strategy(runs: pd.DataFrame, ctx: Context) -> Finding:
    """Two-way layout (strategy x seed) at each compression, random left out.

    A comparison per compression: ``a`` = the range of the seed means, ``b`` = the range
    of the strategy means, ``p`` = the seed effect's F-test. Supported when the seed effect
    is significant (Holm) somewhere with a range at least the strategies'; contradicted
    when it is significant nowhere while the strategies' range exceeds the seeds' at every
    compression; else inconclusive. The count "significant at k of n" is the count of
    p_holm < ALPHA among its own comparisons, nothing else.
    """
    name = "seed_moves_results_like_strategy"
    kept = runs[runs["strategy"] != "random"]
    tables = (_two_way(at_c, ctx.metric) for _, at_c in kept.groupby("compression"))
    comparisons = with_holm([t for t in tables if t is not None])
    statement = "the dense model's seed moves results as much as the choice of strategy"
    finding = Finding(name, statement, scope_of(runs), INCONCLUSIVE, "",
                      comparisons=comparisons)
    tested = [c for c in comparisons if not math.isnan(c.p)]
    if len(tested) < MIN_COMPRESSIONS:
        finding.evidence = (f"{len(tested)} compression(s) with >= {MIN_SEEDS} seeds of >= 2 "
                            f"non-random strategies, the claim needs {MIN_COMPRESSIONS}")
        finding.add = (f"compressions: {MIN_COMPRESSIONS - len(tested)} more with "
                       f"{MIN_SEEDS} seeds of every strategy")
        return finding
    seed_sig = [c for c in tested if c.p_holm < ALPHA]
    strong = [c for c in seed_sig if c.a_value >= c.b_value]
    finding.evidence = (f"seed effect significant (Holm, F-test) at {len(seed_sig)} of "
                        f"{len(tested)} compressions, as large as the strategies' at "
                        f"{len(strong)}; seed range / strategy range: " + ", ".join(
                            f"{c.where} {100 * c.a_value:.2f}/{100 * c.b_value:.2f}"
                            for c in tested) + " points; seed p_holm: " + ", ".join(
                            f"{c.where} {c.p_holm:.2g}" for c in tested))
    if strong:
        finding.verdict = SUPPORTED
    elif not seed_sig and all(c.b_value > c.a_value for c in tested):
        finding.verdict = CONTRADICTED
    else:
        finding.add = "seeds: more seeds per strategy make the seed effect's F-test sharper"
    return finding


def _two_way(at_c: pd.DataFrame, metric: str) -> Paired | None:
    """Seed F-test in a seed x strategy table (one run per cell, no interaction term).

    ``mean`` is the seed range minus the strategy range; ``a_value`` / ``b_value`` hold
    the two ranges (max minus min of the seed means, of the strategy means).
    """
    table = at_c.pivot_table(index="seed", columns="strategy", values=metric).dropna()
    k, s = table.shape  # seeds, strategies
    c = at_c["compression"].iloc[0]
    where = f"c={c:g}"
    if s < 2 or k < 1:
        return None
    seed_means, strat_means = table.mean(axis=1), table.mean(axis=0)
    seed_range = float(seed_means.max() - seed_means.min())
    strat_range = float(strat_means.max() - strat_means.min())
    p = math.nan
    if k >= MIN_SEEDS:
        grand = float(table.to_numpy().mean())
        resid = table.to_numpy() - seed_means.to_numpy()[:, None] - strat_means.to_numpy() + grand
        df_seed, df_res = k - 1, (k - 1) * (s - 1)
        ms_seed = s * float(((seed_means - grand) ** 2).sum()) / df_seed
        ms_res = float((resid ** 2).sum()) / df_res
        from scipy.special import fdtrc

        p = float(fdtrc(df_seed, df_res, ms_seed / ms_res)) if ms_res > 0 else 0.0
    return Paired(where, "seed range", "strategy range", k, seed_range - strat_range,
                  math.nan, math.nan, math.nan, p, a_value=seed_range, b_value=strat_range)


# issue 19: structured against unstructured lives in _structure.py (one speedup
# convention, equal theoretical speedup and equal accuracy, measured speedup beside).
