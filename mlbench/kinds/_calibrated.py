"""Post-training calibrated pruning of transformer blocks (Wanda, SparseGPT, heads, neurons).

The methods live in ``mlbench.calibrated``; this kind runs them in a run. Strategies:

- ``pt_magnitude``, ``wanda``, ``sparsegpt``: unstructured, the same sparsity
  ``1 - 1/compression`` in every block linear (q, k, v, proj, fc, out); embeddings, norms
  and the head stay dense, as in the papers.
- ``<method>_2_4``, ``<method>_4_8``: N:M; the pattern is the target (50% of every block
  linear), so ``--compression`` must be at most 2 (checked before any work).
- ``remove_heads``, ``remove_neurons``: whole attention heads or MLP neurons removed in
  every block, the fraction ``1 - 1/compression`` of them (rounded to whole units, one at
  least kept): a smaller dense network.

Unlike the other kinds, ``--compression`` here is the target of the pruned set (the block
linears), the papers' "sparsity" (compression 2 = 50%), so unstructured and N:M runs at
the same target are comparable; the measured ``compression`` metric is DESIGN.md's
(whole model, all parameters) and ``linear_sparsity`` says what the block linears lost.

The calibration set (``--calib-samples`` samples, ``--calib-seq-len`` characters for
text, seed ``--calib-seed``) is drawn from the training split only; the run's scoring
batches are not used. Recovery fine-tuning is the run's ``--epochs`` (0 in the papers).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from torch import nn

from mlbench import speed
from mlbench.calibrated import (
    Target,
    calibration_inputs,
    prunable_linears,
    prune_post_training,
    prune_units,
    rebuild,
    transformer_blocks,
)
from mlbench.calibrated._names import STRATEGY_NAMES
from mlbench.errors import ConfigError
from mlbench.kinds._contract import (
    Kind,
    Metrics,
    Pruned,
    Rows,
    ScheduleTraits,
    register_kind,
)
from mlbench.masks import Masks, apply_masks, load_masks, save_masks
from mlbench.metrics import conv_linear_ops, layer_table, size_and_ops
from mlbench.models import create_model
from mlbench.setup import Batch, Setup

MASKS_FILE = "masks.safetensors"
UNITS_FILE = "units.json"
WEIGHTS_FILE = "weights.safetensors"
SPARSE = "2:4 semi-structured (fp16) against dense fp16"

METHOD_NAMES = {"pt_magnitude": "magnitude", "wanda": "wanda", "sparsegpt": "sparsegpt"}
PATTERNS = {"": None, "_2_4": (2, 4), "_4_8": (4, 8)}
UNIT_STRATEGIES = {"remove_heads": "heads", "remove_neurons": "neurons"}


def parse(strategy: str) -> tuple[str, tuple[int, int] | None]:
    """``wanda_2_4`` -> (``wanda``, (2, 4)); ``sparsegpt`` -> (``sparsegpt``, None)."""
    for prefix, method in METHOD_NAMES.items():
        for suffix, nm in PATTERNS.items():
            if strategy == prefix + suffix:
                return method, nm
    raise ConfigError(f"{strategy!r} is not a calibrated strategy")


def linear_fraction(setup: Setup) -> float:
    """The fraction of block-linear weights to prune: ``1 - 1/compression``."""
    return 1 - 1 / setup.cfg.prune.compression


@register_kind("calibrated")
class CalibratedKind(Kind):
    """Post-training pruning of transformer block linears with a calibration set."""

    files = (MASKS_FILE, UNITS_FILE)
    repeatable = False

    def strategies(self) -> list[str]:
        return list(STRATEGY_NAMES)

    def check(self, setup: Setup, schedule: ScheduleTraits) -> None:
        """A transformer with ``blocks``; a reachable target; N:M groups that fit; a
        calibration set the training split can give."""
        super().check(setup, schedule)
        cfg, strategy = setup.cfg, setup.cfg.prune.strategy
        transformer_blocks(setup.model)
        fraction = linear_fraction(setup)
        if strategy in UNIT_STRATEGIES:
            if _unit_fraction(setup, UNIT_STRATEGIES[strategy]) >= 1:
                raise ConfigError(f"--compression {cfg.prune.compression:g} is out of reach "
                                  f"for {strategy}: it would remove every unit")
        else:
            _, nm = parse(strategy)
            smallest = min(m.weight.numel() for m in prunable_linears(setup.model).values())
            if nm is None and round(fraction * smallest) >= smallest:
                raise ConfigError(
                    f"--compression {cfg.prune.compression:g} is out of reach for {strategy}: "
                    f"it would prune every weight of a {smallest}-weight block linear")
            if nm is not None:
                self._check_pattern(setup, nm, fraction)
        calibration_inputs(setup.splits.train, cfg.prune.calib_samples,
                           cfg.prune.calib_seq_len, cfg.prune.calib_seed)  # ConfigError
        context = setup.splits.info.input_shape
        if len(context) == 1 and cfg.prune.calib_seq_len > context[0]:
            raise ConfigError(f"--calib-seq-len {cfg.prune.calib_seq_len} exceeds the model's "
                              f"context of {context[0]} characters (--seq-len)")

    @staticmethod
    def _check_pattern(setup: Setup, nm: tuple[int, int], fraction: float) -> None:
        n, m = nm
        for name, layer in prunable_linears(setup.model).items():
            if layer.in_features % m:
                raise ConfigError(f"{setup.cfg.prune.strategy}: layer {name} has "
                                  f"{layer.in_features} inputs, not groups of {m}")
        if fraction > 1 - n / m + 1e-9:
            raise ConfigError(
                f"--compression {setup.cfg.prune.compression:g} asks for more than "
                f"{setup.cfg.prune.strategy} gives ({m / (m - n):g} of the block linears): an "
                "N:M pattern is its own target; use a compression at or below it")

    def prune(self, setup: Setup, batches: Sequence[Batch], *, keep: int | None = None,
              previous: Masks | None = None) -> Pruned:
        """Calibrate on the training split and prune; ``batches`` are not used."""
        cfg, strategy = setup.cfg.prune, setup.cfg.prune.strategy
        calib = calibration_inputs(setup.splits.train, cfg.calib_samples, cfg.calib_seq_len,
                                   cfg.calib_seed)
        batch = setup.cfg.finetune.batch_size
        if strategy in UNIT_STRATEGIES:
            unit = UNIT_STRATEGIES[strategy]
            model = copy.deepcopy(setup.model)
            fraction = min(_unit_fraction(setup, unit), 1 - 1e-9)
            kept = prune_units(model, unit, fraction, calib, batch)
            return Pruned(model, {}, {"model": setup.cfg.model, "unit": unit, "kept": kept})
        method, nm = parse(strategy)
        target = Target(sparsity=0.0 if nm else linear_fraction(setup), nm=nm)
        masks = prune_post_training(setup.model, method, target, calib, batch)
        apply_masks(setup.model, masks)
        return Pruned(setup.model, masks)

    def sizes(self, setup: Setup, dense: nn.Module, pruned: Pruned) -> tuple[Metrics, Rows]:
        """Mask strategies: DESIGN.md's counts with the masks. Head and neuron removal:
        counted on the smaller network against the dense base."""
        shape = setup.splits.info.input_shape
        if pruned.description is None:
            metrics, rows = size_and_ops(pruned.model, pruned.masks, shape)
        else:
            rows = layer_table(pruned.model, {}, shape)
            base_rows = layer_table(dense, {}, shape)
            params = sum(p.numel() for p in dense.parameters())
            params_nz = sum(p.numel() for p in pruned.model.parameters())
            macs = sum(int(r["macs"]) for r in base_rows)
            macs_nz = sum(int(r["macs"]) for r in rows)
            base_cl, mine_cl = conv_linear_ops(base_rows), conv_linear_ops(rows)
            metrics = {"params": params, "params_nz": params_nz,
                       "compression": params / params_nz, "macs": macs, "macs_nz": macs_nz,
                       "flops": 2 * macs, "flops_nz": 2 * macs_nz, "speedup": macs / macs_nz,
                       "macs_conv_linear": base_cl["macs_conv_linear"],
                       "macs_conv_linear_nz": mine_cl["macs_conv_linear"],
                       "speedup_conv_linear": base_cl["macs_conv_linear"]
                       / mine_cl["macs_conv_linear"]}
        linear = prunable_linears(pruned.model)
        kept = sum(int(pruned.masks[f"{n}.weight"].sum()) if f"{n}.weight" in pruned.masks
                   else m.weight.numel() for n, m in linear.items())
        dense_linear = sum(m.weight.numel() for m in prunable_linears(dense).values())
        metrics["linear_sparsity"] = 1 - kept / dense_linear
        return metrics, rows

    def kernels(self, setup: Setup) -> str:
        """2:4 strategies time semi-structured sparse kernels where the device has them."""
        strategy = setup.cfg.prune.strategy
        if strategy.endswith("_2_4") and speed.semi_structured_supported(setup.device):
            return SPARSE
        if strategy.endswith("_2_4"):
            return f"dense: {speed.SEMI_STRUCTURED_REASON}"
        return "dense"

    def timed(self, setup: Setup, dense: nn.Module, pruned: Pruned
              ) -> tuple[nn.Module, nn.Module, Metrics]:
        if self.kernels(setup) != SPARSE:
            return dense, pruned.model, {}
        base = copy.deepcopy(dense).half()
        model, converted = speed.to_semi_structured(copy.deepcopy(pruned.model).half(),
                                                    setup.device)
        return base, model, {"semi_structured_layers": float(converted)}

    def save(self, pruned: Pruned, setup: Setup, folder: Path, meta: Mapping[str, str]
             ) -> list[Path]:
        """Both files, always: the masks (none for head/neuron removal) and the units
        description (``{"unit": null}`` for mask strategies)."""
        units, masks = folder / UNITS_FILE, folder / MASKS_FILE
        units.write_text(json.dumps(pruned.description or {"unit": None}, indent=2))
        save_masks(pruned.masks, masks, dict(meta))
        return [masks, units]

    def load(self, folder: Path, config: Mapping[str, Any]) -> nn.Module:
        """The model by name, shrunk to the saved units or masked, with its weights."""
        model = create_model(str(config["model"]), tuple(config["input_shape"]),
                             int(config["num_classes"]))
        description = json.loads((folder / UNITS_FILE).read_text())
        if description.get("unit"):
            rebuild(model, description["unit"], description["kept"])
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
            return model
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        apply_masks(model, load_masks(folder / MASKS_FILE))
        return model


def _unit_fraction(setup: Setup, unit: str) -> float:
    """The fraction of heads (neurons) of each block to remove: ``1 - 1/compression``."""
    return linear_fraction(setup)
