"""The parts of a prune run that differ by strategy kind and schedule.

``pipeline.prune`` reads top to bottom; what it does for channel (structured)
strategies, for iterative and gradual schedules, and for the size and measured-speed
metrics lives here, as plain functions over the run's ``Setup``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mlbench import schedules, speed
from mlbench.config import OptimConfig, RunConfig
from mlbench.errors import ConfigError
from mlbench.masks import Masks
from mlbench.metrics import layer_table, size_and_ops, smaller_network_ops
from mlbench.models import classifier_name
from mlbench.strategies import STRATEGIES, pattern_floor, strategy_allocation
from mlbench.structured import channel_sizes, describe, max_channel_compression, prune_channels

if TYPE_CHECKING:
    from mlbench.pipeline import Setup
    from mlbench.resume import Rounds

Batch = tuple[Tensor, Tensor]
FitRound = Callable[[OptimConfig, range, Masks, Callable[[int], None]], None]


def check_structured(
    cfg: RunConfig, model: nn.Module, input_shape: tuple[int, ...], classifier: str | None
) -> None:
    """ConfigError unless a channel strategy can run as configured (before any work).

    Channel strategies run one-shot, and the target must be reachable by removing
    all but one channel of every group.
    """
    if cfg.prune.prune_schedule != "oneshot":
        raise ConfigError(
            f"--prune-schedule {cfg.prune.prune_schedule} applies to unstructured strategies; "
            f"channel strategy {cfg.prune.strategy!r} runs oneshot"
        )
    limit = max_channel_compression(model, input_shape, classifier)
    if limit < cfg.prune.compression:
        raise ConfigError(
            f"--compression {cfg.prune.compression:g} is out of reach for channel pruning of "
            f"this model: removing all but one channel of every group allows 1 to {limit:.1f}"
        )


def check_semi_structured(cfg: RunConfig, model: nn.Module, prunable: dict[str, Tensor]) -> None:
    """ConfigError if ``semi_2_4`` could not keep its 2:4 pattern at the target."""
    if cfg.prune.strategy != "semi_2_4":
        return
    floor = pattern_floor(model, prunable)
    if cfg.prune.compression < floor - 1e-9:
        raise ConfigError(
            f"--compression {cfg.prune.compression:g} is below what semi_2_4 needs for this "
            f"model: keeping 2 of every 4 weights of its eligible layers gives {floor:.3f}, "
            "so the target must be at least that"
        )


def prune_structured(setup: Setup, batches: Sequence[Batch]) -> dict[str, Any]:
    """Replace ``setup.model`` by its channel-pruned copy; return its description."""
    cfg, info = setup.cfg, setup.splits.info
    classifier = None if cfg.prune.prune_classifier else classifier_name(setup.model)
    pruned = prune_channels(setup.model, cfg.prune.strategy, cfg.prune.compression,
                            info.input_shape, classifier, batches)
    setup.model = pruned.model
    return describe(pruned, cfg.model, info.input_shape, info.num_classes, cfg.prune.strategy)


def run_schedule(
    setup: Setup, dense: nn.Module, fit_round: FitRound, batches: Sequence[Batch],
    rounds: Rounds | None = None, rewind_state: Mapping[str, Tensor] | None = None,
) -> Masks:
    """Prune and fine-tune ``setup.model`` along the run's iterative or gradual schedule.

    Starts from the base weights (``dense``); scores see the fixed ``batches`` and a
    generator seeded with the run's seed at every step. Returns the final masks
    (exactly ``setup.keep`` weights kept). An iterative schedule with ``rounds`` resumes
    after the last round an interrupted run finished, and checkpoints after each round.
    ``rewind_state`` (``--rewind weights``) is what each round's weights go back to.
    """
    cfg = setup.cfg
    model = setup.model
    model.load_state_dict(dense.state_dict())  # the schedule starts from the base weights
    scorer = STRATEGIES.get(cfg.prune.strategy)
    pruning = schedules.Pruning(
        score=lambda: scorer(model, setup.prunable, batches,
                             torch.Generator().manual_seed(cfg.seed)),
        allocation=strategy_allocation(cfg.prune.strategy),
        prunable=sum(p.numel() for p in setup.prunable.values()),
        keep=setup.keep,
    )
    if cfg.prune.prune_schedule == "iterative":
        base_state = {k: v.clone() for k, v in (  # issue 19: the rewind point's weights
            rewind_state if rewind_state is not None else dense.state_dict()).items()}
        if rounds is None:
            return schedules.iterative(model, pruning, cfg.finetune, cfg.prune.prune_rounds,
                                       cfg.prune.rewind, fit_round, base_state)
        return schedules.iterative(
            model, pruning, cfg.finetune, cfg.prune.prune_rounds, cfg.prune.rewind,
            fit_round, base_state, resumed=rounds.resume(model),
            after_round=lambda done, epoch, masks: rounds.round_done(done, epoch, model, masks))
    return schedules.gradual(model, pruning, cfg.finetune, cfg.prune.prune_rounds, fit_round)


def sizes(
    setup: Setup, dense: nn.Module, masks: Masks, structured: bool
) -> tuple[dict[str, float], list[dict[str, object]]]:
    """Size and MAC metrics and the per-layer table of the pruned model."""
    shape = setup.splits.info.input_shape
    if structured:  # issue 19: channel runs log the paper's convention too
        rows = layer_table(setup.model, {}, shape)
        return channel_sizes(dense, setup.model, shape) | smaller_network_ops(
            dense, rows, shape), rows
    return size_and_ops(setup.model, masks, shape)


def speed_kernels(cfg: RunConfig, device: torch.device) -> str:
    """What the measured speed runs on: dense kernels, or 2:4 sparse ones (and why not)."""
    if cfg.prune.strategy != "semi_2_4":
        return "dense"
    if speed.semi_structured_supported(device):
        return "2:4 semi-structured (fp16) against dense fp16"
    return f"dense: {speed.SEMI_STRUCTURED_REASON}"


def measure_speed(setup: Setup, dense: nn.Module, budget_s: float = float("inf")
                  ) -> dict[str, float]:
    """Measured speed of the dense base against the pruned model (empty if switched off).

    ``budget_s`` caps what measuring costs (issue 19/21: a share of the run's own time);
    ``--speed-repeats`` caps the interleaved sample pairs per batch size.

    A ``semi_2_4`` run on a GPU with 2:4 kernels times fp16 copies: the base dense, the
    pruned one with its 2:4 Linear weights as semi-structured sparse tensors.
    """
    repeats = setup.cfg.prune.speed_repeats
    if repeats == 0 or not setup.dist.is_main:
        return {}
    shape = setup.splits.info.input_shape
    base, pruned, extra = dense, setup.model, {}
    if speed_kernels(setup.cfg, setup.device).startswith("2:4"):
        base = copy.deepcopy(dense).half()
        pruned, converted = speed.to_semi_structured(copy.deepcopy(setup.model).half(),
                                                     setup.device)
        extra = {"semi_structured_layers": float(converted)}
    with torch.no_grad():
        return speed.measured_speedup(base, pruned, shape, setup.cfg.finetune.batch_size,
                                      setup.device, budget_s=budget_s,
                                      max_pairs=max(repeats, speed.MIN_PAIRS)) | extra


__all__ = [
    "check_semi_structured",
    "check_structured",
    "measure_speed",
    "prune_structured",
    "run_schedule",
    "sizes",
    "speed_kernels",
]
