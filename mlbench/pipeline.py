"""The flow of DESIGN.md: base model (trained once or reused) -> prune -> fine-tune -> evaluate.

``prepare`` does every check that can fail on bad input, before any run starts or any
training happens. ``train_base`` and ``prune`` do the work and track it.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mlbench import prune_flow
from mlbench.config import OptimConfig, RunConfig, TrackingConfig, config_hash
from mlbench.data import DatasetInfo, Splits, data_digest, data_source, load_dataset, split_records
from mlbench.device import Precision, pick_device, place_model
from mlbench.distributed import Dist, check_batch, from_env, rank_device
from mlbench.engine import evaluate, fit
from mlbench.errors import ConfigError
from mlbench.masks import Masks, allocate, apply_masks, keep_count, prunable_parameters, save_masks
from mlbench.metrics import OPS_CONVENTION
from mlbench.models import classifier_name, create_model
from mlbench.names import prune_run_name
from mlbench.progress import EpochProgress
from mlbench.resume import Rounds, checkpointer, gradual_checkpointer, round_checkpointer
from mlbench.strategies import STRATEGIES, strategy_allocation
from mlbench.structured import DESCRIPTION, check_strategy, is_structured
from mlbench.tracking import (
    BASE_MODEL,
    CONFIG_HASH,
    WEIGHTS,
    Follower,
    check_reachable,
    resolve_uri,
)

if TYPE_CHECKING:  # mlflow loads when a run starts, after the data is read
    from mlbench.tracking import BaseModel, Tracker


@dataclass
class Setup:
    """What ``prepare`` checked and built: device, data, a freshly seeded model."""

    cfg: RunConfig
    device: torch.device
    splits: Splits
    model: nn.Module
    prunable: dict[str, nn.Parameter]
    keep: int
    dist: Dist = Dist()


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with the global torch RNG seeded, restoring the caller's RNG after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def generator(seed: int) -> torch.Generator:
    """A CPU generator for shuffling, augmentation and random scores."""
    return torch.Generator().manual_seed(seed)


def prepare(cfg: RunConfig, *, prune: bool = True, dist: Dist = Dist()) -> Setup:
    """Validate everything about ``cfg`` that can be wrong and build data and model.

    Raises ConfigError for an unknown strategy, model or dataset, missing data, an
    unavailable device, an unreachable compression, or (under torchrun) a batch size
    that does not split over the processes.
    """
    cfg.check()
    if prune:
        check_strategy(cfg.prune.strategy)
    check_batch(cfg.base.batch_size, dist, "--base-batch-size" if prune else "--batch-size")
    if prune:
        check_batch(cfg.finetune.batch_size, dist, "--batch-size")
    device = rank_device(pick_device(cfg.device), dist)
    splits = load_dataset(cfg.data, device)
    with seeded(cfg.seed):
        model = create_model(cfg.model, splits.info.input_shape, splits.info.num_classes)
    place_model(model, device, cfg.memory_format)
    classifier = None if cfg.prune.prune_classifier else classifier_name(model)
    prunable = prunable_parameters(model, classifier)
    keep = 0
    if prune and is_structured(cfg.prune.strategy):
        prune_flow.check_structured(cfg, model, splits.info.input_shape, classifier)
    elif prune:
        keep = keep_count(model, prunable, cfg.prune.compression)
        prune_flow.check_semi_structured(cfg, model, prunable)
    return Setup(cfg, device, splits, model, prunable, keep, dist)


def base_key_hash(setup: Setup) -> str:
    """The base model's reuse key: its recipe and the content digest of its data.

    A base is never reused for other data: another size, another content or another
    val holdout gives another digest, so another hash.
    """
    return config_hash({**setup.cfg.base_key(), "data_digest": data_digest(setup.splits)})


def log_data(setup: Setup, tracker: Tracker) -> None:
    """The active run's splits as MLflow dataset inputs (train, val, test) and digest."""
    if setup.dist.is_main:
        records = split_records(setup.splits, data_source(setup.cfg.data))
        tracker.log_datasets(records, data_digest(setup.splits))


def load_base(setup: Setup, tracker: Tracker, base: BaseModel) -> None:
    """Load the base model's logged weights (safetensors, no pickle) into ``setup.model``.

    Under torchrun rank 0 loads them and broadcasts them to the other ranks.
    """
    if setup.dist.is_main:
        try:
            path = tracker.download(base.run_id, f"{BASE_MODEL}/{WEIGHTS}", cache=True)
        except ConfigError:  # a base trained by mlbench before base_model/ existed
            path = tracker.download(base.run_id, WEIGHTS, cache=True)
        try:  # issue 20: unreadable weights are one line, not a traceback
            weights = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ConfigError(
                f"the base model's weights (run {base.run_id}, {base.name} version "
                f"{base.version}) cannot be read ({exc}); restore them, or delete that model "
                "version so that a new base model is trained") from None
        setup.model.load_state_dict(weights)
    setup.dist.broadcast_module(setup.model)


def run_name(cfg: RunConfig) -> str:
    """``layer_grad-c8-s0`` (``layer_grad-iterative-c8-s0``): a prune run in the run list."""
    return prune_run_name(cfg.prune.strategy, cfg.prune.compression, cfg.seed,
                          schedule=cfg.prune.prune_schedule)


def prune(
    setup: Setup,
    tracker: Tracker,
    base: BaseModel | None,
    *,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    on_run: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """One (strategy, compression, seed): prune ``base``, fine-tune, evaluate, log.

    ``base`` None finds or trains the base model inside the prune run (``prune`` and
    ``mlflow run -e main``: the project's run is the prune run, the train run its child).
    ``parent_run_id`` nests the run under a run of another process (the sweep's);
    ``tags`` are added to the run, and ``on_run`` hears its id as soon as it exists.

    Returns the final metrics of DESIGN.md (acc1, acc5, pre_acc1, base_acc1, params,
    params_nz, compression, macs, flops, speedup, ...).
    """
    cfg, dist = setup.cfg, setup.dist
    run_hash = cfg.run_hash()
    with tracker.run("prune", run_name(cfg), {**(tags or {}), CONFIG_HASH: run_hash},
                     parent_run_id=parent_run_id) as run_id:
        if on_run is not None:
            on_run(run_id)
        if base is None:
            from mlbench.base import find_or_train_base  # base.py builds on this module

            base = find_or_train_base(setup, tracker)
        tracker.log_params(
            {
                **cfg.flat(),
                "base_run_id": base.run_id,
                "base_model": f"{base.name}/{base.version}" if base.version else "",
                "ops_convention": OPS_CONVENTION,
                "speed_kernels": prune_flow.speed_kernels(cfg, setup.device),
            }
        )
        log_data(setup, tracker)
        load_base(setup, tracker, base)
        precision = Precision(setup.device, cfg.amp)
        batch = cfg.finetune.batch_size
        test = setup.splits.test
        results = _prefixed("base_", evaluate(setup.model, test, batch, precision, dist=dist))
        dense = copy.deepcopy(setup.model)  # the base: measured speed, weight rewinding
        masks: Masks = {}
        structure = None
        if is_structured(cfg.prune.strategy):
            structure = prune_flow.prune_structured(setup, score_batches(setup))
        else:
            masks = dist.broadcast_masks(compute_masks(setup) if dist.is_main else None,
                                         setup.prunable)
            apply_masks(setup.model, masks)
        results |= _prefixed("pre_", evaluate(setup.model, test, batch, precision, dist=dist))
        progress = EpochProgress(f"fine-tune {run_name(cfg)}", cfg.finetune.epochs,
                                 enabled=dist.is_main)
        if cfg.prune.prune_schedule != "oneshot":
            rounds = None
            if cfg.prune.prune_schedule == "iterative":  # checkpoints between rounds
                rounds = Rounds(round_checkpointer(tracker, run_hash, setup.model, dist),
                                generator(cfg.seed))
            with seeded(cfg.seed):
                masks = prune_flow.run_schedule(
                    setup, dense,
                    _fit_round(setup, tracker, precision, progress, rounds, run_hash),
                    score_batches(setup), rounds)
        else:
            with seeded(cfg.seed):
                fit(
                    setup.model,
                    setup.splits.train,
                    setup.splits.val,
                    cfg.finetune,
                    generator=generator(cfg.seed),
                    precision=precision,
                    masks=masks or None,
                    augment=cfg.data.augment,
                    on_epoch=progress.chain(
                        lambda epoch, m: tracker.log_metrics(m, step=epoch, wait=False)),
                    epochs=progress.wrap(range(1, cfg.finetune.epochs + 1)),
                    checkpoint=checkpointer(tracker, run_hash, setup.model, dist),
                    dist=dist,
                    compile=cfg.compile,
                )
        results |= evaluate(setup.model, test, batch, precision, dist=dist)
        sizes, rows = prune_flow.sizes(setup, dense, masks, structure is not None)
        results |= sizes | prune_flow.measure_speed(setup, dense)
        results["train_epochs_total"] = cfg.base.epochs + cfg.finetune.epochs
        del results["base_loss"], results["pre_loss"]
        if dist.is_main:
            _log_artifacts(tracker, cfg, base, masks, rows, setup.model, setup.splits.info,
                           structure)
            tracker.log_pruned(_export_copy(setup.model),
                               torch.zeros(2, *setup.splits.info.input_shape).numpy())
        tracker.log_metrics(results)
    return results


def _fit_round(setup: Setup, tracker: Tracker, precision: Precision,
               progress: EpochProgress, rounds: Rounds | None,
               run_hash: str) -> prune_flow.FitRound:
    """Fine-tuning for one round of a schedule: the run's data, seed stream, logging, progress.

    With ``rounds`` (iterative) its generator is the seed stream and every epoch's metrics
    go into its history, for the checkpoint after the round. A gradual schedule is one
    fine-tuning whose masks change every epoch: it checkpoints like one-shot
    fine-tuning, with the masks.
    """
    gen = rounds.generator if rounds is not None else generator(setup.cfg.seed)

    def fit_round(recipe: OptimConfig, epochs: range, masks: Masks,
                  after: Callable[[int], None]) -> None:
        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            tracker.log_metrics(metrics, step=epoch, wait=False)
            if rounds is not None:
                rounds.epoch_done(metrics)
            after(epoch)

        ck = None
        if setup.cfg.prune.prune_schedule == "gradual":
            ck = gradual_checkpointer(tracker, run_hash, setup.model, masks, setup.dist)
        fit(setup.model, setup.splits.train, setup.splits.val, recipe, generator=gen,
            precision=precision, masks=masks, augment=setup.cfg.data.augment,
            on_epoch=progress.chain(on_epoch), epochs=progress.wrap(epochs), dist=setup.dist,
            compile=setup.cfg.compile, checkpoint=ck)

    return fit_round


def compute_masks(setup: Setup) -> Masks:
    """Score the prunable weights with the strategy and allocate ``setup.keep`` of them.

    Gradient scores see a fixed set of training batches: the first ``score_batches``
    batches of a seeded shuffle, without augmentation.
    """
    cfg = setup.cfg
    scorer = STRATEGIES.get(cfg.prune.strategy)
    scores = scorer(setup.model, setup.prunable, score_batches(setup), generator(cfg.seed))
    return allocate(scores, setup.keep, strategy_allocation(cfg.prune.strategy))


def score_batches(setup: Setup) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``score_batches`` training batches of a seeded shuffle, not augmented."""
    cfg = setup.cfg
    gen = generator(cfg.seed)
    batches = []
    for x, y in setup.splits.train.batches(cfg.finetune.batch_size, shuffle=True, generator=gen):
        if len(batches) == cfg.prune.score_batches:
            break
        batches.append((x, y))
    return batches


def _log_artifacts(
    tracker: Tracker,
    cfg: RunConfig,
    base: BaseModel,
    masks: Masks,
    rows: list[dict[str, object]],
    model: nn.Module,
    info: DatasetInfo,
    structure: dict[str, object] | None = None,
) -> None:
    resolved = {**cfg.flat(), "base_run_id": base.run_id, "config_hash": cfg.run_hash(),
                "input_shape": list(info.input_shape), "num_classes": info.num_classes}
    tracker.log_dict(resolved, "config.json")
    if structure is not None:  # the pruned architecture; its weights follow
        tracker.log_dict(structure, DESCRIPTION)
    with tempfile.TemporaryDirectory() as tmp:
        if structure is None:
            masks_path = Path(tmp) / "masks.safetensors"
            meta = {"base_run_id": base.run_id, "strategy": cfg.prune.strategy}
            save_masks(masks, masks_path, meta)
            tracker.log_file(masks_path)
        table = Path(tmp) / "layers.csv"
        with table.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        tracker.log_file(table)
        weights = Path(tmp) / WEIGHTS
        save_file(_cpu_state(model), str(weights))
        tracker.log_file(weights)


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {prefix + k: v for k, v in metrics.items()}


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def _export_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).cpu().eval()





def run_prune(cfg: RunConfig, tracking: TrackingConfig) -> dict[str, float]:
    """Check everything, then prune (training the base model first if needed)."""
    check_reachable(resolve_uri(tracking.tracking_uri))  # fail fast, before loading data
    dist = from_env(pick_device(cfg.device))
    setup = prepare(cfg, dist=dist)
    from mlbench.tracking import Tracker  # imports mlflow

    return prune(setup, Tracker(tracking) if dist.is_main else Follower(tracking), None)


__all__ = [
    "Setup",
    "base_key_hash",
    "compute_masks",
    "generator",
    "load_base",
    "log_data",
    "prepare",
    "prune",
    "run_name",
    "run_prune",
    "score_batches",
    "seeded",
]
