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
    non_inferior,
    significant,
    verdict_from,
)
from mlbench.report.findings._stats import ALPHA, MIN_SEEDS, Paired, paired, with_holm

ALLOCATION_PAIRS = (("global_weight", "layer_weight"), ("global_grad", "layer_grad"))
MIN_COMPRESSIONS = 2


def tested_groups(comparisons: list[Paired]) -> int:
    """Compressions (or speedup points) with at least one comparison of MIN_SEEDS seeds."""
    return len({c.where for c in comparisons if c.n >= MIN_SEEDS})


def scope_of(runs: pd.DataFrame) -> str:
    """``mnist / mlp`` for one pair's runs."""
    pairs = runs[["dataset", "model"]].drop_duplicates()
    if len(pairs) == 1:
        return f"{pairs.iloc[0, 0]} / {pairs.iloc[0, 1]}"
    return f"{len(pairs)} (dataset, model) pairs"


def by_seed(runs: pd.DataFrame, strategy: str, metric: str) -> pd.DataFrame:
    """compression x seed table of ``metric`` for one strategy."""
    rows = runs[runs["strategy"] == strategy]
    return rows.pivot_table(index="compression", columns="seed", values=metric, aggfunc="mean")


def at_compressions(runs: pd.DataFrame, a: str, b: str, metric: str) -> list[Paired]:
    """``a - b`` at every compression both ran, paired by seed."""
    ta, tb = by_seed(runs, a, metric), by_seed(runs, b, metric)
    out = []
    for c in ta.index.intersection(tb.index):
        diffs = (ta.loc[c] - tb.loc[c]).dropna()
        if len(diffs):
            out.append(paired(f"c={c:g}", a, b, diffs.to_numpy()))
    return out


@claim("global_beats_layer", "global beats layer allocation at fixed compression")
def global_beats_layer(runs: pd.DataFrame, ctx: Context) -> Finding:
    """global_X - layer_X at each compression, for X in weight and grad."""
    present = set(runs["strategy"])
    comparisons = [c for g, lay in ALLOCATION_PAIRS if {g, lay} <= present
                   for c in at_compressions(runs, g, lay, ctx.metric)]
    groups = tested_groups(comparisons)
    return verdict_from("global_beats_layer", ctx, scope_of(runs), comparisons,
                        min_groups=MIN_COMPRESSIONS, groups=groups)


@claim("layer_matches_global_at_speedup",
       "layer matches or beats global allocation at fixed theoretical speedup")
def layer_matches_global_at_speedup(runs: pd.DataFrame, ctx: Context) -> Finding:
    """layer_X - global_X at each layer run's speedup, global interpolated on log speedup."""
    column = speedup_column(runs)
    runs = runs[runs[column].notna()]  # issue 19: runs without it are named, left out
    present = set(runs["strategy"])
    comparisons = [c for g, lay in ALLOCATION_PAIRS if {g, lay} <= present
                   for c in at_speedups(runs, lay, g, ctx.metric, column)]
    finding = non_inferior("layer_matches_global_at_speedup", ctx, scope_of(runs),
                           comparisons, groups=tested_groups(comparisons))
    finding.evidence += f" (speedup: {column})"
    return finding


def speedup_column(runs: pd.DataFrame) -> str:
    """The paper's conv+linear speedup; runs without it are named on stderr (issue 19)."""
    from mlbench.report.convention import speedup_column as convention

    return convention(runs, "findings: speedup")


def at_speedups(runs: pd.DataFrame, a: str, b: str, metric: str, column: str) -> list[Paired]:
    """``a - b`` at each of a's (compression, seed) speedups, b interpolated per seed.

    b's accuracy is interpolated linearly in log speedup between its own runs of the
    same seed, never extrapolated: a speedup outside b's range gives no difference.
    """
    curves = {}  # seed -> (log speedups ascending, accuracies) of b
    for seed, rows in runs[runs["strategy"] == b].groupby("seed"):
        rows = rows.sort_values(column)
        curves[seed] = (np.log(rows[column].to_numpy(float)), rows[metric].to_numpy(float))
    out = []
    ra = runs[runs["strategy"] == a]
    for c, at_c in ra.groupby("compression"):
        diffs, speeds = [], []
        for seed, speed, acc in zip(at_c["seed"], at_c[column].to_numpy(float),
                                    at_c[metric].to_numpy(float), strict=True):
            x, y = curves.get(seed, (np.empty(0), np.empty(0)))
            here = math.log(speed)
            if len(x) < 2 or not x[0] <= here <= x[-1]:
                continue
            diffs.append(acc - float(np.interp(here, x, y)))
            speeds.append(speed)
        if diffs:
            out.append(paired(f"{a} c={c:g} (speedup {np.mean(speeds):.2f})", a, b, diffs))
    return out


@claim("random_is_worst", "random pruning is the worst strategy at every compression")
def random_is_worst(runs: pd.DataFrame, ctx: Context) -> Finding:
    """X - random at each compression, for every other strategy X."""
    others = sorted(set(runs["strategy"]) - {"random"})
    comparisons = ([c for s in others for c in at_compressions(runs, s, "random", ctx.metric)]
                   if "random" in set(runs["strategy"]) else [])
    groups = tested_groups(comparisons)
    return verdict_from("random_is_worst", ctx, scope_of(runs), comparisons,
                        min_groups=MIN_COMPRESSIONS, groups=groups)


@claim("ranking_changes_between_pairs",
       "the ranking of strategies changes between (dataset, model) pairs", scope=ACROSS)
def ranking_changes_between_pairs(runs: pd.DataFrame, ctx: Context) -> Finding:
    """Per pair and per two strategies, the per-seed mean over shared compressions.

    Supported when some two strategies are significantly ordered one way in one pair and
    the other way in another; contradicted when every two strategies are significantly
    ordered, the same way, in every pair; inconclusive otherwise.
    """
    name = "ranking_changes_between_pairs"
    statement = "the ranking of strategies changes between (dataset, model) pairs"
    pairs = runs.groupby(["dataset", "model"])
    finding = Finding(name, statement, scope_of(runs), INCONCLUSIVE, "",
                      resolution=ctx.resolution)
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
        order.setdefault((c.a, c.b), {})[c.where] = significant(c, ctx.resolution)
    flips = [k for k, v in order.items() if 1 in v.values() and -1 in v.values()]
    everywhere = all(len(v) == pairs.ngroups and len(set(v.values())) == 1 and 0 not in v.values()
                     for v in order.values())
    finding.evidence = (f"{pairs.ngroups} pairs, {len(order)} strategy pairs: "
                        f"{len(flips)} reversed significantly (Holm)"
                        + (f": {', '.join(f'{a} vs {b}' for a, b in flips)}" if flips else ""))
    if flips:
        finding.verdict = SUPPORTED
    elif everywhere:
        finding.verdict = CONTRADICTED
    else:
        finding.add = "seeds, or pairs where the strategies differ by more than the resolution"
    return finding


def _overall(runs: pd.DataFrame, key: tuple[str, str], ctx: Context) -> list[Paired]:
    """a - b averaged over the compressions both ran, per seed, for every two strategies."""
    names = sorted(set(runs["strategy"]))
    tables = {s: by_seed(runs, s, ctx.metric) for s in names}
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = tables[a].index.intersection(tables[b].index)
            diffs = (tables[a].loc[shared] - tables[b].loc[shared]).mean().dropna()
            out.append(paired(f"{key[0]} / {key[1]}", a, b, diffs.to_numpy()))
    return out


@claim("seed_moves_results_like_strategy",
       "the dense model's seed moves results as much as the choice of strategy")
def seed_moves_results_like_strategy(runs: pd.DataFrame, ctx: Context) -> Finding:
    """Two-way layout (strategy x seed) at each compression, random left out.

    A comparison per compression: ``a`` = the range of the seed means, ``b`` = the range
    of the strategy means, ``p`` = the seed effect's F-test. Supported when the seed effect
    is significant (Holm) somewhere with a range at least the strategies'; contradicted
    when it is significant nowhere while the strategies' range exceeds the seeds' by more
    than the resolution at every compression; else inconclusive.
    """
    name = "seed_moves_results_like_strategy"
    kept = runs[runs["strategy"] != "random"]
    tables = (_two_way(at_c, ctx.metric) for _, at_c in kept.groupby("compression"))
    comparisons = with_holm([t for t in tables if t is not None])
    statement = "the dense model's seed moves results as much as the choice of strategy"
    finding = Finding(name, statement, scope_of(runs), INCONCLUSIVE, "",
                      resolution=ctx.resolution, comparisons=comparisons)
    tested = [c for c in comparisons if not math.isnan(c.p)]
    if len(tested) < MIN_COMPRESSIONS:
        finding.evidence = (f"{len(tested)} compression(s) with >= {MIN_SEEDS} seeds of >= 2 "
                            f"non-random strategies, the claim needs {MIN_COMPRESSIONS}")
        finding.add = (f"compressions: {MIN_COMPRESSIONS - len(tested)} more with "
                       f"{MIN_SEEDS} seeds of every strategy")
        return finding
    res = 0.0 if math.isnan(ctx.resolution) else ctx.resolution
    seed_sig = [c for c in tested if c.p_holm < ALPHA and c.a_value >= res]
    strong = [c for c in seed_sig if c.a_value >= c.b_value]
    finding.evidence = (f"seed effect significant (Holm, F-test) at {len(seed_sig)} of "
                        f"{len(tested)} compressions, as large as the strategies' at "
                        f"{len(strong)}; seed range / strategy range: " + ", ".join(
                            f"{c.where} {100 * c.a_value:.2f}/{100 * c.b_value:.2f}"
                            for c in tested) + " points")
    if strong:
        finding.verdict = SUPPORTED
    elif not seed_sig and all(c.b_value - c.a_value > res for c in tested):
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
