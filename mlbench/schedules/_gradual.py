"""Gradual (Zhu & Gupta 2017): one fine-tuning whose sparsity rises as it goes.

The kept weights fall at the start of each of the first ``prune_rounds`` epochs along
s_t = s_f (1 - (1 - t/n)^3), ending at exactly the run's target. The masks are updated
in place, so the training loop's mask hold (which keeps them by reference) follows, and
the checkpoints of the one fine-tuning carry them.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from mlbench import checkpoint
from mlbench.kinds import Pruned
from mlbench.schedules._contract import Schedule, Training, register_schedule
from mlbench.setup import generator


def gradual_keeps(prunable: int, keep: int, steps: int) -> list[int]:
    """Kept weights at each of ``steps`` steps: Zhu & Gupta's cubic ramp, ending at ``keep``."""
    removed = prunable - keep
    return [prunable - round(removed * (1 - (1 - t / steps) ** 3)) for t in range(1, steps + 1)]


def holding(extra: dict[str, Tensor]) -> Callable[[checkpoint.TrainState], str | None]:
    """What a checkpoint lacks to resume a gradual schedule: the masks ``extra`` names."""

    def holds(state: checkpoint.TrainState) -> str | None:
        return None if all(f"extra.{k}" in state.tensors for k in extra) else "no masks"

    return holds


@register_schedule("gradual")
class Gradual(Schedule):
    """Sparsity rising over the first ``prune_rounds`` epochs of one fine-tuning."""

    prunes_repeatedly = True

    def run(self, training: Training, pruned: Pruned) -> Pruned:
        setup, kind = training.setup, training.kind
        cfg, model = setup.cfg, setup.model
        model.load_state_dict(training.dense.state_dict())  # start again from the base
        epochs = cfg.finetune.epochs
        steps = max(1, min(cfg.prune.prune_rounds, epochs - 1)) if epochs > 1 else 1
        prunable, keep = kind.budget(setup)
        keeps = gradual_keeps(prunable, keep, steps)
        first = kind.prune(setup, training.batches, keep=keeps[0]).masks
        params = dict(model.named_parameters())
        held = {n: m.to(dtype=params[n].dtype, device=params[n].device)
                for n, m in first.items()}

        def after(epoch: int, _metrics: dict[str, float]) -> None:  # the start of epoch + 1
            if epoch < len(keeps):
                new = kind.prune(setup, training.batches, keep=keeps[epoch],
                                 previous={n: m.bool() for n, m in held.items()}).masks
                for name, mask in new.items():
                    held[name].copy_(mask)

        extra = {f"mask.{name}": mask for name, mask in held.items()}
        ck = training.checkpoints.open(model, holds=holding(extra))
        if ck is not None:
            ck.extra = extra
        training.fit(model, cfg.finetune, range(1, epochs + 1), held,
                     generator=generator(cfg.seed), checkpoint=ck, after=after)
        return Pruned(model, {n: m.bool().cpu() for n, m in held.items()})
