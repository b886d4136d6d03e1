"""What a claim is, the registry of claims, and the rules that turn comparisons into verdicts.

A claim is one function registered with ``@claim(name, statement, scope)``. A ``pair``
claim gets the runs of one (dataset, model) (one fine-tuning recipe); an ``across`` claim
gets the runs of every pair. It returns a ``Finding``; ``verdict_from`` and
``non_inferior`` below turn its comparisons into a verdict:

- **supported**: the claim holds at *every* point it speaks of (each compression, each
  speedup), each at level ALPHA: an intersection-union test, which needs no correction
  for the number of points;
- **contradicted**: some point is significantly against it (Holm over the claim's points,
  since one counterexample anywhere suffices);
- **inconclusive**: neither, with what to add (seeds, compressions, another pair) or why
  more seeds cannot settle it (the test images' own variance);
- **not testable**: the runs cannot tell this claim apart from another (on an MLP global
  and layer allocation have the same speedup at every compression, so "at fixed speedup"
  is "at fixed compression" again).

Every comparison's uncertainty comes from the seeds and from the test images where the
runs logged their predictions (``_stats``), seeds alone where they did not; the evidence
says which.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from mlbench.predictions import Predictions
from mlbench.registry import Registry
from mlbench.report.findings._stats import (
    ALPHA,
    MIN_SEEDS,
    SEEDS_ONLY,
    Paired,
    image_limit,
    seeds_needed,
    with_holm,
)

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
UNTESTABLE = "not testable on this model"
PAIR, ACROSS = "pair", "across"
MARGIN = 0.005  # non-inferiority margin: "matches" means at most 0.5 points worse


@dataclass(frozen=True)
class Context:
    """What every claim needs besides the runs."""

    metric: str = "acc1"  # the accuracy compared (acc1 or acc5)
    predictions: Mapping[str, Predictions] = field(default_factory=dict)  # run_id -> test
    margin: float = MARGIN  # non-inferiority margin (accuracy, not points)


@dataclass
class Finding:
    """One claim's verdict on one scope, with its evidence."""

    claim: str
    statement: str
    scope: str  # "mnist / mlp", or "3 (dataset, model) pairs"
    verdict: str
    evidence: str
    add: str = ""  # what would settle an inconclusive verdict
    comparisons: list[Paired] = field(default_factory=list)


ClaimFn = Callable[[pd.DataFrame, Context], Finding]
CLAIMS: Registry[ClaimFn] = Registry("claim")


def claim(name: str, statement: str, scope: str = PAIR, *,
          fine_tuned: bool = False) -> Callable[[ClaimFn], ClaimFn]:
    """Register a claim; ``scope`` is PAIR (one (dataset, model)) or ACROSS (all of them).

    A claim about what fine-tuning does (``fine_tuned``) reads the runs of the recipe with
    the most runs among those that fine-tune (epochs > 0); the others read the recipe
    with the most runs overall (``mlbench.report.findings._run.comparable``)."""
    if scope not in (PAIR, ACROSS):
        raise ValueError(f"scope must be {PAIR!r} or {ACROSS!r}, got {scope!r}")
    return CLAIMS.register(name, statement=statement, scope=scope, fine_tuned=fine_tuned)


def significant(c: Paired) -> int:
    """+1 / -1 when ``a - b`` is significant after Holm in that direction, else 0."""
    if math.isnan(c.p_holm) or c.p_holm >= ALPHA:
        return 0
    return 1 if c.mean > 0 else -1


def rejects_for(c: Paired) -> bool:
    """``a > b`` at this point at level ALPHA (its 95% interval above zero)."""
    return not math.isnan(c.p) and c.p < ALPHA and c.mean > 0


def verdict_from(name: str, ctx: Context, scope: str, comparisons: list[Paired],
                 *, min_groups: int = 1, groups: int = 1, group_word: str = "compression"
                 ) -> Finding:
    """The directional rule for "a beats b at every point": each ``a - b > 0`` is *for*.

    Supported when every comparison is tested and significantly for at level ALPHA (an
    intersection-union test: no correction); contradicted when one is significantly
    against after Holm; inconclusive otherwise, or with fewer than ``min_groups`` tested
    groups (compressions, pairs), or no comparison with MIN_SEEDS paired seeds.
    """
    comparisons = with_holm(comparisons)
    tested = [c for c in comparisons if not math.isnan(c.p)]
    statement = CLAIMS.meta(name)["statement"]
    finding = Finding(name, statement, scope, INCONCLUSIVE, "", comparisons=comparisons)
    lacking = _lacking(comparisons, tested, groups, min_groups, group_word)
    if lacking:
        finding.evidence, finding.add = lacking
        return finding
    pro = [c for c in tested if rejects_for(c)]
    con = [c for c in tested if significant(c) < 0]
    finding.evidence = (f"{len(pro)} of {len(comparisons)} comparisons significantly for "
                        f"(each at alpha {ALPHA}, intersection-union), {len(con)} against "
                        f"(Holm){_untested(comparisons, tested)}" + _worst(tested, con)
                        + method_note(comparisons))
    if con:
        finding.verdict = CONTRADICTED
    elif len(pro) == len(comparisons):
        finding.verdict = SUPPORTED
    else:
        finding.add = _what_to_add([c for c in comparisons if c not in pro])
    return finding


def non_inferior(name: str, ctx: Context, scope: str, comparisons: list[Paired],
                 *, min_groups: int = 2, groups: int = 1) -> Finding:
    """The rule for "a matches or beats b": every 95% interval's low end above -margin.

    An intersection-union test (the claim must hold at every point, so no correction is
    due); contradicted when b is significantly better (Holm) by more than the margin
    somewhere.
    """
    comparisons = with_holm(comparisons)
    tested = [c for c in comparisons if not math.isnan(c.p)]
    statement = CLAIMS.meta(name)["statement"]
    finding = Finding(name, statement, scope, INCONCLUSIVE, "", comparisons=comparisons)
    lacking = _lacking(comparisons, tested, groups, min_groups, "speedup point")
    if lacking:
        finding.evidence, finding.add = lacking
        return finding
    margin = ctx.margin
    con = [c for c in tested if significant(c) < 0 and c.mean < -margin]
    within = [c for c in tested if c.ci_low >= -margin]
    finding.evidence = (f"{len(within)} of {len(comparisons)} comparisons within "
                        f"-{_pts(margin)} (the margin) at 95%; {len(con)} with b "
                        f"significantly better by more (Holm)"
                        f"{_untested(comparisons, tested)}" + _worst(tested, con)
                        + method_note(comparisons))
    if con:
        finding.verdict = CONTRADICTED
    elif len(within) == len(comparisons):
        finding.verdict = SUPPORTED
    else:
        short = [c for c in tested if c.ci_low < -margin]
        need = [n for n in (seeds_needed(_shifted(c, margin)) for c in short) if n]
        finding.add = (f"seeds: about {max(need)} paired seeds would narrow the "
                       f"{len(short)} open interval(s)" if need and len(need) == len(short)
                       else "seeds: the open intervals need more paired seeds" if short
                       else f"seeds: {MIN_SEEDS} per point at every point")
    return finding


def not_testable(name: str, scope: str, why: str) -> Finding:
    """A claim these runs cannot tell apart from another one: said once, not repeated."""
    return Finding(name, CLAIMS.meta(name)["statement"], scope, UNTESTABLE, why)


def method_note(comparisons: list[Paired]) -> str:
    """"; seed-only: ..." where some comparison lacked per-image predictions, and unpaired seeds."""
    out = ""
    seed_only = [c for c in comparisons if c.method == SEEDS_ONLY and c.n]
    if seed_only:
        out += (f"; {len(seed_only)} of {len(comparisons)} comparison(s) seed-only (no "
                "per-image test predictions behind them: the test images' variance is not "
                "counted)")
    unpaired = sum(c.unpaired for c in comparisons)
    if unpaired:
        out += (f"; {unpaired} seed pair(s) not paired: the two runs come from different "
                "base models (base_run_id)")
    return out


def _shifted(c: Paired, margin: float) -> Paired:
    from dataclasses import replace

    return replace(c, mean=c.mean + margin)


def _lacking(comparisons: list[Paired], tested: list[Paired], groups: int, min_groups: int,
             word: str) -> tuple[str, str] | None:
    """(evidence, what to add) when there is too little to test, else None."""
    if not comparisons:
        return ("no comparable runs", f"runs: every strategy of the claim at >= {min_groups} "
                f"{word}(s) with >= {MIN_SEEDS} seeds")
    if not tested:
        most = max(c.n for c in comparisons)
        return (f"at most {most} paired seed(s) per comparison, a test needs {MIN_SEEDS}"
                + method_note(comparisons),
                f"seeds: {MIN_SEEDS - most} more per cell (the same seeds for every strategy)")
    if groups < min_groups:
        return (f"{groups} {word}(s) with {MIN_SEEDS} seeds, the claim needs {min_groups}",
                f"{word}s: {min_groups - groups} more with {MIN_SEEDS} seeds")
    return None


def _untested(comparisons: list[Paired], tested: list[Paired]) -> str:
    missing = len(comparisons) - len(tested)
    return f"; {missing} untested (under {MIN_SEEDS} paired seeds)" if missing else ""


def _worst(tested: list[Paired], con: list[Paired]) -> str:
    """The comparison most against the claim, as text."""
    worst = min(tested, key=lambda c: c.mean)
    return (f"; most against: {worst.a} - {worst.b} at {worst.where} = "
            f"{_signed(worst.mean)} [{_signed(worst.ci_low)}, {_signed(worst.ci_high)}] points"
            f", p {worst.p:.2g}" + (f", p_holm {worst.p_holm:.2g}" if con else ""))


def _what_to_add(open_: list[Paired]) -> str:
    """What would settle the comparisons that did not reject."""
    untested = [c for c in open_ if math.isnan(c.p)]
    if untested:
        most = max(c.n for c in untested)
        return f"seeds: {MIN_SEEDS - most} more at {', '.join(c.where for c in untested[:4])}"
    against = [c for c in open_ if c.mean <= 0]
    if against:
        c = against[0]
        return (f"nothing here points for the claim at {c.where} ({c.a} - {c.b} = "
                f"{_signed(c.mean)} points): more seeds would only narrow the interval")
    limited = [c for c in open_ if image_limit(c)]
    if limited:
        return (f"{len(limited)} difference(s) for the claim are within the test images' own "
                "variance (the images on which the two models disagree): more seeds cannot "
                "settle them on this test split")
    need = [seeds_needed(c) for c in open_]
    if any(n is None for n in need):
        return "seeds: more paired seeds"
    have = max(c.n for c in open_)
    span = f"{min(need)}" if min(need) == max(need) else f"{min(need)}-{max(need)}"
    return (f"seeds: about {span} paired seeds (have {have}; t quantiles at this spread) "
            f"would settle the {len(open_)} open comparison(s) at "
            f"{', '.join(c.where for c in open_[:4])}{'...' if len(open_) > 4 else ''}")


def _pts(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.2f} points"


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.2f}"
