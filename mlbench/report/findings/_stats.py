"""The statistics behind a verdict: paired t-tests over seeds, Holm's correction, and the
smallest difference in accuracy that one test split can resolve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05  # family-wise error rate of each claim's comparisons (after Holm)
MIN_SEEDS = 3  # paired seeds a comparison needs before it is tested
Z95 = 1.959963984540054

# Test-split sizes of the registered datasets (the split the final numbers come from).
TEST_SAMPLES = {"mnist": 10_000, "fashion_mnist": 10_000, "cifar10": 10_000,
                "cifar100": 10_000, "imagenet": 50_000, "digits": 359}


@dataclass(frozen=True)
class Paired:
    """One paired comparison: ``a - b`` over the seeds both ran (the same base model).

    ``p`` is the two-sided paired t-test's p-value (NaN below MIN_SEEDS pairs);
    ``p_holm`` is set by ``holm`` over the claim's family of comparisons.
    """

    where: str  # "c=8", "speedup=4.1", "mean over compressions", ...
    a: str
    b: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    p: float
    p_holm: float = math.nan
    a_value: float = math.nan  # where a and b are sizes rather than strategies (a range, say)
    b_value: float = math.nan


def paired(where: str, a: str, b: str, diffs: Sequence[float]) -> Paired:
    """Mean, sample std, 95% t-interval and two-sided p-value of per-seed differences.

    Example:
        >>> round(paired("c=2", "x", "y", [0.01, 0.02, 0.03]).p, 4)
        0.0742
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    std = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < MIN_SEEDS:
        return Paired(where, a, b, n, mean, std, math.nan, math.nan, math.nan)
    from scipy.special import stdtr, stdtrit  # ~0.2 s; scipy.stats would be ~0.9 s

    se = std / math.sqrt(n)
    half = float(stdtrit(n - 1, 0.975)) * se
    no_spread = 0.0 if mean != 0 else 1.0  # identical differences: certain, or no effect
    p = no_spread if se == 0 else float(2 * stdtr(n - 1, -abs(mean) / se))
    return Paired(where, a, b, n, mean, std, mean - half, mean + half, p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count as a test).

    Example:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
        [0.03, 0.06, 0.06]
    """
    tested = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(tested)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(tested)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def with_holm(comparisons: list[Paired]) -> list[Paired]:
    """The comparisons with ``p_holm`` filled in over all of them (one family)."""
    adjusted = holm([c.p for c in comparisons])
    return [Paired(**{**c.__dict__, "p_holm": q}) for c, q in zip(comparisons, adjusted,
                                                                   strict=True)]


def resolution(test_samples: int | None, accuracy: float) -> float:
    """The smallest accuracy difference one test split resolves (95%, two models).

    Two accuracies near ``accuracy`` measured on ``test_samples`` images each have a
    binomial standard error sqrt(p(1-p)/N); their difference is resolved at 95% once it
    exceeds 1.96 * sqrt(2) of that. Seeds share the test split, so averaging over seeds
    does not shrink this part of the error. Never below one image (1/N). NaN when N is
    unknown.

    Example:
        >>> round(resolution(10_000, 0.98), 4)
        0.0039
    """
    if not test_samples:
        return math.nan
    p = min(max(accuracy, 0.0), 1.0)
    return max(Z95 * math.sqrt(2 * p * (1 - p) / test_samples), 1 / test_samples)


def seeds_needed(c: Paired, family: int = 1) -> int | None:
    """Paired seeds for this mean difference to clear Holm's strictest level in a family
    of ``family`` comparisons, at this spread (a normal approximation: a rough guide)."""
    if c.n < 2 or math.isnan(c.std) or c.mean == 0:
        return None
    if c.std == 0:
        return MIN_SEEDS
    from scipy.special import ndtri

    z = float(ndtri(1 - ALPHA / (2 * max(family, 1))))
    return max(MIN_SEEDS, c.n + 1, math.ceil((z * c.std / abs(c.mean)) ** 2) + 1)
