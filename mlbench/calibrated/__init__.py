"""Post-training pruning of transformers with a calibration set (no labels, no training).

- ``calibration_inputs``: a seeded calibration set drawn from the training split only.
- ``prune_post_training``: magnitude, Wanda (Sun et al. 2023) or SparseGPT (Frantar &
  Alistarh 2023) on every block linear, unstructured or N:M, block after block.
- ``prune_units``: structured removal of attention heads or MLP neurons, the smaller
  network really built (``rebuild`` makes it again from its description).

Example:
    >>> calib = calibration_inputs(splits.train, samples=64, seq_len=64, seed=0)
    >>> masks = prune_post_training(model, "wanda", Target(nm=(2, 4)), calib)
"""

from __future__ import annotations

from mlbench.calibrated._capture import InputStats, calibration_inputs, capture
from mlbench.calibrated._prune import (
    METHODS,
    Target,
    block_linears,
    prunable_linears,
    prune_post_training,
    transformer_blocks,
)
from mlbench.calibrated._scores import (
    layer_mask,
    magnitude_scores,
    nm_mask,
    row_mask,
    wanda_scores,
)
from mlbench.calibrated._sparsegpt import hessian, sparsegpt
from mlbench.calibrated._structured import (
    UNITS,
    kept_count,
    prune_units,
    rebuild,
    remove_heads,
    remove_neurons,
)

__all__ = [
    "METHODS", "UNITS", "InputStats", "Target", "block_linears", "calibration_inputs",
    "capture", "hessian", "kept_count", "layer_mask", "magnitude_scores", "nm_mask",
    "prunable_linears", "prune_post_training", "prune_units", "rebuild", "remove_heads",
    "remove_neurons", "row_mask", "sparsegpt", "transformer_blocks", "wanda_scores",
]
