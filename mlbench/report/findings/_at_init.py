"""Frankle et al. 2021's claim on pruning at initialization, as a verdict (issue 19).

"Shuffling at-init masks within layers does not hurt": for each strategy X pruned at
initialization, ``X+init+layer_shuffle`` (the same layer-wise sparsities, kept weights
shuffled within each layer) against ``X+init``, paired by seed at each compression,
through the same comparison helper and non-inferiority rule as the paper's claims.
"""

from __future__ import annotations

import pandas as pd

from mlbench.report.findings._claims import at_compressions, scope_of, tested_groups
from mlbench.report.findings._core import Context, Finding, claim, non_inferior

SHUFFLE = "+init+layer_shuffle"


@claim("at_init_layer_shuffle_does_not_hurt",
       "shuffling at-init masks within layers does not hurt (Frankle et al. 2021)")
def at_init_layer_shuffle_does_not_hurt(runs: pd.DataFrame, ctx: Context) -> Finding:
    """X+init+layer_shuffle - X+init at each compression, for every X run both ways."""
    present = set(runs["strategy"])
    pairs = sorted((s, s[: -len(SHUFFLE)] + "+init") for s in present if s.endswith(SHUFFLE))
    comparisons = [c for shuffled, plain in pairs if plain in present
                   for c in at_compressions(runs, shuffled, plain, ctx)]
    return non_inferior("at_init_layer_shuffle_does_not_hurt", ctx, scope_of(runs),
                        comparisons, groups=tested_groups(comparisons))


__all__ = ["at_init_layer_shuffle_does_not_hurt"]
