"""One-shot: prune once at the target, fine-tune ``epochs`` with the masks held.

The paper's protocol. Fine-tuning checkpoints inside ``engine.fit`` and resumes from the
last checkpoint of an interrupted run of the same key.
"""

from __future__ import annotations

from mlbench.kinds import Pruned
from mlbench.schedules._contract import Schedule, Training, register_schedule
from mlbench.setup import generator


@register_schedule("oneshot", named=False)  # the paper's protocol: names omit it
class OneShot(Schedule):
    """Prune once, then fine-tune."""

    def run(self, training: Training, pruned: Pruned) -> Pruned:
        cfg = training.setup.cfg
        model = pruned.model
        training.fit(model, cfg.finetune, range(1, cfg.finetune.epochs + 1),
                     pruned.masks or None, generator=generator(cfg.seed),
                     checkpoint=training.checkpoints.open(model))
        return pruned
