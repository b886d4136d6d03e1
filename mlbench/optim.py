"""Optimizers and per-step learning-rate schedules built from an OptimConfig."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from mlbench.config import OptimConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW over all parameters of ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return _eager(torch.optim.SGD)(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adam":
        return _eager(torch.optim.Adam)(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return _eager(torch.optim.AdamW)(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


# Methods of torch's optimizers wrapped for torch.compile: the wrappers import
# torch._dynamo on first call (1.4 s and 145 MB of a run on 2 cores, issue 21) only to
# tell dynamo not to trace them. mlbench never traces an optimizer (``--compile``
# compiles the model's forward), so its optimizers call the wrapped functions directly.
_DYNAMO_WRAPPED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


@functools.cache
def _eager(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """``cls`` with the same updates, minus the wrappers that import torch._dynamo.

    ``step``'s wrapper only sets grad mode (off) around the update and breaks a dynamo
    graph; the subclass sets grad mode the same way. Where this torch has no such
    wrappers (``__wrapped__`` missing), ``cls`` itself is returned.
    """
    namespace: dict[str, object] = {}
    for name in _DYNAMO_WRAPPED:
        inner = getattr(getattr(cls, name), "__wrapped__", None)
        if inner is not None:
            namespace[name] = inner
    raw_step = getattr(cls.step, "__wrapped__", None)
    if raw_step is None or not namespace:
        return cls

    def step(self: torch.optim.Optimizer, closure: object = None) -> object:
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return raw_step(self, closure)

    namespace["step"] = step
    namespace["__doc__"] = cls.__doc__
    return type(cls.__name__, (cls,), namespace)


def lr_factor(cfg: OptimConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based), schedule by epoch.

    Linear warm-up over ``warmup_epochs``, then constant, step (x gamma every
    ``step_size`` epochs) or cosine to zero at the end of ``epochs``.
    """
    epoch = step / steps_per_epoch
    warmup = cfg.warmup_epochs
    if warmup > 0 and epoch < warmup:
        return (step + 1) / (warmup * steps_per_epoch)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** int((epoch - warmup) // cfg.step_size)
    span = max(cfg.epochs - warmup, 1e-12)
    progress = min(max((epoch - warmup) / span, 0.0), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int
) -> LambdaLR:
    """A scheduler to step once per optimizer step."""
    return LambdaLR(optimizer, lambda step: lr_factor(cfg, step, max(steps_per_epoch, 1)))
