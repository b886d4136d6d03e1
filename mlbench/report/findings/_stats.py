"""The statistics behind a verdict: paired differences over seeds *and* test images.

Two strategies pruned from one base model (one per seed) are scored on the same test
images. Their accuracy difference has two sources of uncertainty (DESIGN.md, "Paired
comparisons"): the seed (the base model and its fine-tuning) and the test images (another
draw of images would score them differently, but only through the images on which the two
models disagree). With ``x[s, i]`` the difference in correctness of the two runs of seed
``s`` on image ``i`` (-1, 0 or +1; fractional where one side is interpolated), ``n`` seeds
and ``N`` images, the mean difference ``D`` has, under a crossed seeds x images design,

    Var(D) = s_seed^2 / n + s_image^2 / N

with ``s_seed^2`` the variance over seeds of the per-seed differences and ``s_image^2`` the
variance over images of the per-image differences averaged over seeds. For one seed the
second term is McNemar's (Wald) variance of a paired difference of proportions,
``((b + c) / N - (b - c)^2 / N^2) / N`` with b, c the images only one model gets right; the
seeds share the images, so this term does not shrink with more seeds. The estimate counts
the seed x image interaction twice (a slight overstatement, never an understatement). The
interval and p-value use a t distribution with Welch-Satterthwaite degrees of freedom
(close to n - 1 when the seeds dominate, large when the images do).

Runs without per-image predictions (stores from before they were logged) fall back to the
seed-only paired t-test, and the comparison says so (``method == "seeds"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

ALPHA = 0.05  # level of each comparison (intersection-union) and of Holm's family
MIN_SEEDS = 3  # paired seeds a comparison needs before it is tested
MAX_SEEDS = 1000  # seeds_needed gives up beyond this
SEEDS_IMAGES, SEEDS_ONLY = "seeds+images", "seeds"


@dataclass(frozen=True)
class Paired:
    """One paired comparison: ``a - b`` over the seeds both ran on one base model each.

    ``p`` is the two-sided p-value (NaN below MIN_SEEDS pairs); ``p_holm`` is set by
    ``with_holm`` over the claim's family. ``method`` says which variance went in:
    ``seeds+images`` or ``seeds`` (no per-image predictions). ``unpaired`` counts seeds
    left out because the two runs came from different base models.
    """

    where: str  # "c=8", "speedup=4.1", "mean over compressions", ...
    a: str
    b: str
    n: int
    mean: float
    std: float  # of the per-seed differences
    ci_low: float
    ci_high: float
    p: float
    p_holm: float = math.nan
    a_value: float = math.nan  # where a and b are sizes rather than strategies (a range, say)
    b_value: float = math.nan
    image_se: float = math.nan  # the test images' part of the standard error
    df: float = math.nan  # degrees of freedom of the t reference
    method: str = SEEDS_ONLY
    unpaired: int = 0
    images: int = 0  # test images behind image_se (0: seed-only)

    @property
    def se(self) -> float:
        """Standard error of ``mean`` (both sources where ``method`` has both)."""
        seed = self.std ** 2 / self.n if self.n > 1 else math.nan
        image = 0.0 if math.isnan(self.image_se) else self.image_se ** 2
        return math.sqrt(seed + image)


def _t_interval(where: str, a: str, b: str, n: int, mean: float, std: float, se: float,
                df: float, **extra: object) -> Paired:
    from scipy.special import stdtr, stdtrit  # ~0.2 s; scipy.stats would be ~0.9 s

    half = float(stdtrit(df, 0.975)) * se
    no_spread = 0.0 if mean != 0 else 1.0  # identical differences: certain, or no effect
    p = no_spread if se == 0 else float(2 * stdtr(df, -abs(mean) / se))
    return Paired(where, a, b, n, mean, std, mean - half, mean + half, p, df=df, **extra)


def paired(where: str, a: str, b: str, diffs: Sequence[float], *, unpaired: int = 0) -> Paired:
    """Seed-only: mean, sample std, 95% t-interval and two-sided p of per-seed differences.

    Example:
        >>> round(paired("c=2", "x", "y", [0.01, 0.02, 0.03]).p, 4)
        0.0742
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    std = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < MIN_SEEDS:
        return Paired(where, a, b, n, mean, std, math.nan, math.nan, math.nan,
                      unpaired=unpaired)
    return _t_interval(where, a, b, n, mean, std, std / math.sqrt(n), float(n - 1),
                       unpaired=unpaired)


def paired_images(where: str, a: str, b: str, x: np.ndarray, *, unpaired: int = 0) -> Paired:
    """Seeds and test images: ``x`` is (seeds, images) of per-image correctness differences.

    See the module docstring for the variance; a t-interval on Welch-Satterthwaite df.

    Example:
        >>> x = np.zeros((3, 10_000)); x[:, :30] = 1  # a right on 30 more images, every seed
        >>> c = paired_images("c=2", "a", "b", x)
        >>> round(100 * c.mean, 2), c.p < 0.001
        (0.3, True)
    """
    x = np.asarray(x, dtype=float)
    n, images = x.shape
    per_seed = x.mean(axis=1)
    mean = float(per_seed.mean()) if n else math.nan
    std = float(per_seed.std(ddof=1)) if n > 1 else math.nan
    image_var = float(x.mean(axis=0).var(ddof=1)) / images if images > 1 else 0.0
    extra = {"image_se": math.sqrt(image_var), "method": SEEDS_IMAGES, "unpaired": unpaired,
             "images": images}
    if n < MIN_SEEDS:
        return Paired(where, a, b, n, mean, std, math.nan, math.nan, math.nan, **extra)
    seed_var = std ** 2 / n
    total = seed_var + image_var
    df = satterthwaite(seed_var, n - 1, image_var, images - 1)
    return _t_interval(where, a, b, n, mean, std, math.sqrt(total), df, **extra)


def satterthwaite(v1: float, df1: float, v2: float, df2: float) -> float:
    """Welch-Satterthwaite degrees of freedom of ``v1 + v2`` (df1 when both are zero)."""
    denominator = v1 ** 2 / df1 + v2 ** 2 / df2
    return df1 if denominator == 0 else (v1 + v2) ** 2 / denominator


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
    return [replace(c, p_holm=q) for c, q in zip(comparisons, adjusted, strict=True)]


def seeds_needed(c: Paired) -> int | None:
    """Paired seeds for this difference's 95% interval to exclude zero at this spread.

    The smallest ``n`` (more than the seeds there are, at least MIN_SEEDS) with
    ``|mean| > t(0.975, df) * sqrt(std^2 / n + image_se^2)``, df as the comparison has it
    (n - 1 for seed-only). The images' part is kept as measured: more seeds do not shrink
    it. None when no number of seeds would (the test images' variance alone is too large),
    or there is no spread to go by.
    """
    if c.n < 2 or math.isnan(c.std) or c.mean == 0:
        return None
    from scipy.special import stdtrit

    image_var = 0.0 if math.isnan(c.image_se) else c.image_se ** 2
    for n in range(max(MIN_SEEDS, c.n + 1), MAX_SEEDS + 1):
        seed_var = c.std ** 2 / n
        df = (satterthwaite(seed_var, n - 1, image_var, c.images - 1) if c.images > 1
              else float(n - 1))
        if abs(c.mean) > float(stdtrit(df, 0.975)) * math.sqrt(seed_var + image_var):
            return n
    return None


def image_limit(c: Paired) -> bool:
    """True when the images' variance alone keeps this difference from significance."""
    return not math.isnan(c.image_se) and abs(c.mean) <= 1.959963984540054 * c.image_se
