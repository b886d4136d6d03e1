"""What a claim is, the registry of claims, and the rules that turn comparisons into verdicts.

A claim is one function registered with ``@claim(name, statement, scope)``. A ``pair``
claim gets the runs of one (dataset, model) (one fine-tuning recipe); an ``across`` claim
gets the runs of every pair. It returns a ``Finding``; ``verdict_from`` and
``non_inferior`` below turn its comparisons into one of the three verdicts:

- **supported**: nothing significant against the claim, and enough for it;
- **contradicted**: a comparison significant against it;
- **inconclusive**: neither, with what to add (seeds, compressions, another pair) or
  why more runs cannot settle it (differences under the test split's resolution).

"Significant" means Holm-adjusted p < ALPHA over the claim's comparisons *and* a mean
difference at least the test split's resolution: seeds share one test split, so a
difference smaller than that split can resolve is not evidence, however many seeds agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from mlbench.registry import Registry
from mlbench.report.findings._stats import ALPHA, MIN_SEEDS, Paired, seeds_needed, with_holm

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
PAIR, ACROSS = "pair", "across"


@dataclass(frozen=True)
class Context:
    """What every claim needs besides the runs."""

    metric: str = "acc1"  # the accuracy compared (acc1 or acc5)
    resolution: float = math.nan  # smallest difference the test split resolves
    test_samples: int | None = None


@dataclass
class Finding:
    """One claim's verdict on one scope, with its evidence."""

    claim: str
    statement: str
    scope: str  # "mnist / mlp", or "3 (dataset, model) pairs"
    verdict: str
    evidence: str
    add: str = ""  # what would settle an inconclusive verdict
    resolution: float = math.nan
    comparisons: list[Paired] = field(default_factory=list)


ClaimFn = Callable[[pd.DataFrame, Context], Finding]
CLAIMS: Registry[ClaimFn] = Registry("claim")


def claim(name: str, statement: str, scope: str = PAIR) -> Callable[[ClaimFn], ClaimFn]:
    """Register a claim; ``scope`` is PAIR (one (dataset, model)) or ACROSS (all of them)."""
    if scope not in (PAIR, ACROSS):
        raise ValueError(f"scope must be {PAIR!r} or {ACROSS!r}, got {scope!r}")
    return CLAIMS.register(name, statement=statement, scope=scope)


def significant(c: Paired, resolution: float) -> int:
    """+1 / -1 when ``a - b`` is significant (Holm) and resolvable in that direction, else 0."""
    if math.isnan(c.p_holm) or c.p_holm >= ALPHA:
        return 0
    if not math.isnan(resolution) and abs(c.mean) < resolution:
        return 0
    return 1 if c.mean > 0 else -1


def verdict_from(name: str, ctx: Context, scope: str, comparisons: list[Paired],
                 *, min_groups: int = 1, groups: int = 1, group_word: str = "compression"
                 ) -> Finding:
    """The directional rule: each comparison's ``a - b > 0`` is evidence *for* the claim.

    Supported when no comparison is significant against it and at least half of the
    tested ones are significant for it; contradicted when one is significant against;
    inconclusive otherwise, or with fewer than ``min_groups`` tested groups (compressions,
    pairs) or no comparison with MIN_SEEDS paired seeds.
    """
    comparisons = with_holm(comparisons)
    tested = [c for c in comparisons if not math.isnan(c.p)]
    statement = CLAIMS.meta(name)["statement"]
    finding = Finding(name, statement, scope, INCONCLUSIVE, "", resolution=ctx.resolution,
                      comparisons=comparisons)
    lacking = _lacking(comparisons, tested, groups, min_groups, group_word)
    if lacking:
        finding.evidence, finding.add = lacking
        return finding
    signs = [significant(c, ctx.resolution) for c in tested]
    pro, con = signs.count(1), signs.count(-1)
    finding.evidence = (f"{pro} of {len(tested)} comparisons significantly for, {con} against "
                        f"(Holm, alpha {ALPHA}; |difference| >= {_pts(ctx.resolution)})"
                        + _worst(tested, con))
    if con:
        finding.verdict = CONTRADICTED
    elif 2 * pro >= len(tested):
        finding.verdict = SUPPORTED
    else:
        finding.add = _what_to_add(tested, signs, ctx.resolution)
    return finding


def non_inferior(name: str, ctx: Context, scope: str, comparisons: list[Paired],
                 *, min_groups: int = 2, groups: int = 1) -> Finding:
    """The rule for "a matches or beats b": every 95% interval's low end is above -resolution.

    That is an intersection-union test (the claim must hold at every point, so no
    correction is due); contradicted when b is significantly better (Holm) somewhere.
    """
    comparisons = with_holm(comparisons)
    tested = [c for c in comparisons if not math.isnan(c.p)]
    statement = CLAIMS.meta(name)["statement"]
    finding = Finding(name, statement, scope, INCONCLUSIVE, "", resolution=ctx.resolution,
                      comparisons=comparisons)
    lacking = _lacking(comparisons, tested, groups, min_groups, "speedup point")
    if lacking:
        finding.evidence, finding.add = lacking
        return finding
    margin = 0.0 if math.isnan(ctx.resolution) else ctx.resolution
    con = [c for c in tested if significant(c, ctx.resolution) < 0]
    within = [c for c in tested if c.ci_low >= -margin]
    finding.evidence = (f"{len(within)} of {len(tested)} comparisons within -{_pts(margin)} "
                        f"at 95%; {len(con)} with b significantly better (Holm)"
                        + _worst(tested, len(con)))
    if con:
        finding.verdict = CONTRADICTED
    elif len(within) == len(tested):
        finding.verdict = SUPPORTED
    else:
        short = [c for c in tested if c.ci_low < -margin]
        need = [n for n in (seeds_needed(c, len(tested)) for c in short) if n]
        finding.add = (f"seeds: about {max(need)} paired seeds would narrow the "
                       f"{len(short)} open interval(s)" if need else
                       "seeds: the open intervals need more paired seeds")
    return finding


def _lacking(comparisons: list[Paired], tested: list[Paired], groups: int, min_groups: int,
             word: str) -> tuple[str, str] | None:
    """(evidence, what to add) when there is too little to test, else None."""
    if not comparisons:
        return ("no comparable runs", f"runs: every strategy of the claim at >= {min_groups} "
                f"{word}(s) with >= {MIN_SEEDS} seeds")
    if not tested:
        most = max(c.n for c in comparisons)
        return (f"at most {most} paired seed(s) per comparison, a test needs {MIN_SEEDS}",
                f"seeds: {MIN_SEEDS - most} more per cell (the same seeds for every strategy)")
    if groups < min_groups:
        return (f"{groups} {word}(s) with {MIN_SEEDS} seeds, the claim needs {min_groups}",
                f"{word}s: {min_groups - groups} more with {MIN_SEEDS} seeds")
    return None


def _worst(tested: list[Paired], con: int) -> str:
    """The comparison most against the claim, as text."""
    worst = min(tested, key=lambda c: c.mean)
    return (f"; most against: {worst.a} - {worst.b} at {worst.where} = "
            f"{_signed(worst.mean)} [{_signed(worst.ci_low)}, {_signed(worst.ci_high)}] points"
            + (f", p_holm {worst.p_holm:.2g}" if con or worst.p_holm < 1 else ""))


def _what_to_add(tested: list[Paired], signs: list[int], resolution: float) -> str:
    open_ = [c for c, s in zip(tested, signs, strict=True) if s == 0 and c.mean > 0]
    if not open_:
        return "nothing here points for the claim; more seeds would only narrow the intervals"
    above = [c for c in open_ if math.isnan(resolution) or c.mean >= resolution]
    if not above:
        return (f"the {len(open_)} differences for the claim are below the test split's "
                f"resolution ({_pts(resolution)}); more seeds cannot resolve them on this split")
    need = [n for n in (seeds_needed(c, len(tested)) for c in above) if n]
    have = max(c.n for c in tested)
    span = f"{min(need)}" if need and min(need) == max(need) else f"{min(need)}-{max(need)}" \
        if need else ""
    return (f"seeds: about {span} paired seeds (have {have}) would resolve {len(above)} "
            "open comparison(s) whose difference exceeds the resolution" if need else
            "seeds: more paired seeds")


def _pts(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.2f} points"


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.2f}"
