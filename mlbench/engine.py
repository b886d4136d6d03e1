"""The training engine: ``train_one_epoch``, ``evaluate`` and ``fit``.

It prints nothing, knows neither MLflow nor Optuna (per-epoch metrics go to a callback),
and synchronizes with the device once per epoch: losses and correct counts are summed
as device tensors and read back at the end.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from mlbench.checkpoint import Checkpointer, capture, restore
from mlbench.config import OptimConfig
from mlbench.data import Split
from mlbench.device import Precision, compiled
from mlbench.distributed import Dist
from mlbench.masks import MaskHold, Masks
from mlbench.metrics import topk_correct
from mlbench.optim import build_optimizer, build_scheduler

EpochCallback = Callable[[int, dict[str, float]], None]


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    precision: Precision,
    dist: Dist = Dist(),
) -> dict[str, float]:
    """One pass over ``batches``; returns ``train_loss`` and ``train_acc1`` (exact).

    A language model's (B, T, V) logits and (B, T) targets count every token as a
    sample (logits flattened to (B*T, V)); a classifier's (B, C) and (B,) are unchanged.

    Under data parallelism ``model`` is the DDP wrapper and ``batches`` this rank's
    part; the sums are reduced over the ranks once, at the end.
    """
    model.train()
    loss_sum = correct = None
    samples = 0
    for x, y in batches:
        with precision.autocast():
            logits = model(x).flatten(0, -2)  # (N, C): N = B, or B*T for a language model
            y = y.flatten()
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
        scheduler.step()
        with torch.no_grad():
            batch_loss = loss.detach().float() * y.numel()
            batch_correct = logits.argmax(dim=1).eq(y).sum()
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            correct = batch_correct if correct is None else correct + batch_correct
        samples += y.numel()
    if dist.enabled:
        totals = torch.tensor([0.0, 0.0, float(samples)], dtype=torch.float64)
        totals = totals.to(dist.device())
        if samples:
            totals[0], totals[1] = loss_sum.double(), correct.double()
        loss_sum, correct, samples = (float(v) for v in dist.all_sum(totals).tolist())
    if samples == 0:
        return {"train_loss": float("nan"), "train_acc1": float("nan")}
    return {"train_loss": float(loss_sum) / samples, "train_acc1": float(correct) / samples}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    batch_size: int,
    precision: Precision | None = None,
    ks: tuple[int, ...] = (1, 5),
    dist: Dist = Dist(),
    predicted: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Loss and exact top-k accuracies (``acc1``, ``acc5``) over the whole ``split``.

    Accuracies are correct / samples over the split (a partial last batch counts
    exactly its samples); k is capped at the number of classes. Under data
    parallelism each rank evaluates its part and the sums are reduced. For a language
    model ((B, T) targets) every token is a sample: ``acc1``/``acc5`` are exact
    next-token fractions, ``loss`` is nats per token and ``bpc`` (bits per character)
    is ``loss / ln 2``.

    ``predicted``, where given, receives each batch's (argmax labels, targets), on the
    CPU and flattened, in split order: the run's test predictions at no second pass
    (this rank's shard under data parallelism).
    """
    was_training = model.training
    model.eval()
    autocast = precision.autocast if precision else contextlib.nullcontext
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros(len(ks), dtype=torch.int64)
    samples = 0
    first = True
    sequence = False
    for x, y in split.batches(batch_size, shard=dist.shard):
        if first:
            loss_sum, correct, first = loss_sum.to(x.device), correct.to(x.device), False
        sequence = y.dim() == 2
        with autocast():
            logits = model(x).flatten(0, -2)  # (N, C): N = B, or B*T for a language model
        y = y.flatten()
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += topk_correct(logits, y, ks)
        samples += y.numel()
        if predicted is not None:
            predicted.append((logits.argmax(dim=-1).cpu(), y.cpu()))
    model.train(was_training)
    if dist.enabled:
        totals = torch.cat([loss_sum.reshape(1).cpu(), correct.cpu().double(),
                            torch.tensor([float(samples)], dtype=torch.float64)])
        totals = dist.all_sum(totals.to(dist.device())).cpu()
        loss_sum, correct, samples = totals[0], totals[1:-1].long(), int(totals[-1])
    if samples == 0:
        raise ValueError("cannot evaluate on an empty split")
    out = {"loss": loss_sum.item() / samples}
    out.update({f"acc{k}": c / samples for k, c in zip(ks, correct.tolist(), strict=True)})
    if sequence:
        out["bpc"] = out["loss"] / math.log(2)
    return out


def fit(
    model: nn.Module,
    train: Split,
    val: Split,
    cfg: OptimConfig,
    *,
    generator: torch.Generator,
    precision: Precision,
    masks: Masks | None = None,
    augment: bool = True,
    on_epoch: EpochCallback | None = None,
    epochs: Iterable[int] | None = None,
    checkpoint: Checkpointer | None = None,
    dist: Dist = Dist(),
    compile: bool = False,
    lr_schedule: Callable[[torch.optim.Optimizer, int], LRScheduler] | None = None,
    on_state: Callable[[int, nn.Module, torch.optim.Optimizer], None] | None = None,
) -> dict[str, float]:
    """Train ``model`` for ``cfg.epochs`` epochs, holding ``masks`` if given.

    After each epoch the validation split is evaluated and ``on_epoch(epoch, metrics)``
    receives ``train_loss``, ``train_acc1``, ``val_loss``, ``val_acc1``, ``val_acc5``
    and ``lr`` (epochs count from 1). Shuffling and augmentation draw only from
    ``generator``. ``epochs`` may wrap the epoch range (e.g. in a progress bar).
    With ``checkpoint``, training starts after its ``resume`` state's epoch (if any),
    exactly where that run stood, and a checkpoint is written after each epoch that
    is due (never after the last: the finished model is the result). Under data
    parallelism (``dist``) the model trains inside DistributedDataParallel, each rank on
    its part of every batch, and ``on_epoch`` gets the metrics reduced over the ranks.
    ``compile`` trains a ``torch.compile``d model. ``lr_schedule(optimizer, steps per
    epoch)`` replaces the recipe's learning-rate schedule (a replayed one, for rewinding);
    ``on_state(epoch, model, optimizer)`` sees the training state after each epoch (a
    base model's rewind snapshot).

    Returns:
        The last epoch's metrics (empty when ``cfg.epochs`` is 0).
    """
    optimizer = build_optimizer(model, cfg)
    drop_last = len(train) > cfg.batch_size  # a batch of one breaks BatchNorm
    steps = train.num_batches(cfg.batch_size, drop_last=drop_last)
    # issue 19: a rewound round replays the base training's schedule instead
    scheduler = (build_scheduler(optimizer, cfg, steps) if lr_schedule is None
                 else lr_schedule(optimizer, steps))
    hold = MaskHold(model, optimizer, masks) if masks else None
    trained = compiled(dist.wrap(model), compile)  # evaluation runs the plain model
    history: list[dict[str, float]] = []
    done = 0
    if checkpoint is not None and checkpoint.resume is not None:
        restore(checkpoint.resume, model, optimizer, scheduler, precision, generator,
                checkpoint.extra)
        done, history = checkpoint.resume.epoch, list(checkpoint.resume.history)
    last: dict[str, float] = dict(history[-1]) if history else {}
    try:
        for epoch in epochs if epochs is not None else range(1, cfg.epochs + 1):
            if epoch <= done:
                continue
            batches = train.batches(
                cfg.batch_size,
                shuffle=True,
                augment=augment,
                generator=generator,
                drop_last=drop_last,
                shard=dist.shard,
            )
            last = train_one_epoch(trained, batches, optimizer, scheduler, precision, dist)
            dist.broadcast_module(model)  # one set of BatchNorm statistics for evaluation
            val_metrics = evaluate(model, val, cfg.batch_size, precision, dist=dist)
            last.update({f"val_{k}": v for k, v in val_metrics.items()})
            last["lr"] = optimizer.param_groups[0]["lr"]
            history.append(dict(last))
            if on_state is not None:  # issue 19: rewind snapshots
                on_state(epoch, model, optimizer)
            if on_epoch is not None:
                on_epoch(epoch, dict(last))
            if checkpoint is not None and epoch < cfg.epochs and checkpoint.due():
                checkpoint.write(
                    capture(epoch, model, optimizer, scheduler, precision, generator, history,
                            checkpoint.extra)
                )
    finally:
        if hold is not None:
            hold.remove()
    return last
