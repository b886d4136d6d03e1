"""The flow of DESIGN.md: base model (trained once or reused) -> prune -> fine-tune -> evaluate.

``prepare`` does every check that can fail on bad input, before any run starts or any
training happens. ``train_base`` and ``prune`` do the work and track it.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mlbench import checkpoint, prune_flow
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
from mlbench.strategies import STRATEGIES, strategy_allocation
from mlbench.structured import DESCRIPTION, check_strategy, is_structured
from mlbench.tracking import (
    BASE_HASH,
    CHECKPOINT_DIR,
    CONFIG_HASH,
    WEIGHTS,
    BaseModel,
    CellTaken,
    Follower,
    Tracker,
    check_reachable,
    resolve_uri,
)


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


def registered_name(cfg: RunConfig) -> str:
    """The Model Registry name of a base model: ``mlbench-<dataset>-<model>``."""
    return f"mlbench-{cfg.data.dataset}-{cfg.model}"


def train_base(setup: Setup, tracker: Tracker, *, exclusive: bool = False) -> BaseModel:
    """Train the dense base model in a ``train`` run, log it and register it.

    With ``exclusive``, raise CellTaken if another live process is training it.
    """
    cfg, model, dist = setup.cfg, setup.model, setup.dist
    base_hash = base_key_hash(setup)
    name = f"base-{cfg.model}-{cfg.data.dataset}-s{cfg.seed}"
    tags = {BASE_HASH: base_hash, CONFIG_HASH: base_hash}
    with tracker.run("train", name, tags, exclusive=exclusive) as run_id:
        tracker.log_params(cfg.base_key())
        log_data(setup, tracker)
        precision = Precision(setup.device, cfg.amp)
        _settle_claim(tracker, dist)
        progress = EpochProgress(f"train {name}", cfg.base.epochs, enabled=dist.is_main)
        with seeded(cfg.seed):
            fit(
                model,
                setup.splits.train,
                setup.splits.val,
                cfg.base,
                generator=generator(cfg.seed),
                precision=precision,
                augment=cfg.data.augment,
                on_epoch=progress.chain(
                    lambda epoch, m: tracker.log_metrics(m, step=epoch, wait=False)),
                epochs=progress.wrap(range(1, cfg.base.epochs + 1)),
                checkpoint=checkpointer(tracker, "train", base_hash, dist),
                dist=dist,
                compile=cfg.compile,
            )
        test = evaluate(model, setup.splits.test, cfg.base.batch_size, precision, dist=dist)
        tracker.log_metrics({"acc1": test["acc1"], "acc5": test["acc5"], "loss": test["loss"]})
        if not dist.is_main:
            return BaseModel(run_id=run_id, name=registered_name(cfg), version=None)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / WEIGHTS
            save_file(_cpu_state(model), str(path))
            tracker.log_file(path)
        example = torch.zeros(2, *setup.splits.info.input_shape).numpy()
        version = tracker.register_base(
            registered_name(cfg), _export_copy(model), example, base_hash
        )
        tracker.describe_base(registered_name(cfg), version,
                              base_description(setup, base_hash, test["acc1"]),
                              alias=f"seed-{cfg.seed}")
    return BaseModel(run_id=run_id, name=registered_name(cfg), version=version)


def base_description(setup: Setup, base_hash: str, acc1: float) -> str:
    """What a registered base model is, for its model version's description."""
    cfg = setup.cfg
    return (
        f"Dense base model of mlbench: {cfg.model} on {cfg.data.dataset} (data digest "
        f"{data_digest(setup.splits)}), seed {cfg.seed}, recipe hash {base_hash}, test acc1 "
        f"{acc1:.4f}. Every strategy at seed {cfg.seed} prunes these weights. Load them with "
        f"mlflow.pytorch.load_model('models:/{registered_name(cfg)}@seed-{cfg.seed}'), or the "
        "run's weights.safetensors into mlbench.models.create_model (no pickle)."
    )


def _settle_claim(tracker: Tracker, dist: Dist) -> None:
    """Settle the run's claim on rank 0 and tell every rank whether it stands."""
    won = True
    try:
        tracker.confirm_claim()
    except CellTaken:
        won = False
    if not dist.broadcast_flag(won):
        raise CellTaken("another worker holds this run")


def load_base(setup: Setup, tracker: Tracker, base: BaseModel) -> None:
    """Load the base model's logged weights (safetensors, no pickle) into ``setup.model``.

    Under torchrun rank 0 loads them and broadcasts them to the other ranks.
    """
    if setup.dist.is_main:
        state = load_file(str(tracker.download(base.run_id, WEIGHTS, cache=True)))
        setup.model.load_state_dict(state)
    setup.dist.broadcast_module(setup.model)


def find_or_train_base(setup: Setup, tracker: Tracker, poll_s: float = 2.0) -> BaseModel:
    """Reuse the registered base model with the same base hash, or train one.

    If another process (a sweep on another machine) is training that very model, wait
    for it rather than train a second one: every strategy must prune the same weights.
    """
    name, base_hash = registered_name(setup.cfg), base_key_hash(setup)
    if setup.dist.enabled:  # rank 0 looks, and all ranks train together if need be
        found = tracker.find_base(name, base_hash)
        if setup.dist.broadcast_flag(found is not None):
            return found or BaseModel(run_id="", name=name, version=None)
        return train_base(setup, tracker)
    while True:
        found = tracker.find_base(name, base_hash)
        if found is not None:
            return found
        if not tracker.running("train", base_hash):
            try:
                return train_base(setup, tracker, exclusive=True)
            except CellTaken:
                pass
        time.sleep(poll_s)


def run_name(cfg: RunConfig) -> str:
    """``layer_grad-c8-s0`` (``layer_grad-iterative-c8-s0``): a prune run in the run list."""
    return prune_run_name(cfg.prune.strategy, cfg.prune.compression, cfg.seed,
                          schedule=cfg.prune.prune_schedule)


def prune(
    setup: Setup, tracker: Tracker, *, parent_run_id: str | None = None, exclusive: bool = False
) -> dict[str, float]:
    """One (strategy, compression, seed): prune the base model, fine-tune, evaluate, log.

    ``parent_run_id`` nests the run under a sweep run of another process; ``exclusive``
    makes it a claim on the cell (raising CellTaken if a live worker already has it).

    Returns the final metrics of DESIGN.md (acc1, acc5, pre_acc1, base_acc1, params,
    params_nz, compression, macs, flops, speedup, ...).
    """
    cfg, dist = setup.cfg, setup.dist
    tags = {CONFIG_HASH: cfg.run_hash()}
    with tracker.run(
        "prune", run_name(cfg), tags, parent_run_id=parent_run_id, exclusive=exclusive
    ):
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
        _settle_claim(tracker, dist)  # the claim settled while the work above was done
        progress = EpochProgress(f"fine-tune {run_name(cfg)}", cfg.finetune.epochs,
                                 enabled=dist.is_main)
        if cfg.prune.prune_schedule != "oneshot":
            with seeded(cfg.seed):
                masks = prune_flow.run_schedule(
                    setup, dense, _fit_round(setup, tracker, precision, progress),
                    score_batches(setup))
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
                    checkpoint=checkpointer(tracker, "prune", tags[CONFIG_HASH], dist),
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
               progress: EpochProgress) -> prune_flow.FitRound:
    """Fine-tuning for one round of a schedule: the run's data, seed stream, logging, progress.

    Rounds are not checkpointed: an interrupted iterative or gradual run starts over.
    """
    gen = generator(setup.cfg.seed)

    def fit_round(recipe: OptimConfig, epochs: range, masks: Masks,
                  after: Callable[[int], None]) -> None:
        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            tracker.log_metrics(metrics, step=epoch, wait=False)
            after(epoch)

        fit(setup.model, setup.splits.train, setup.splits.val, recipe, generator=gen,
            precision=precision, masks=masks, augment=setup.cfg.data.augment,
            on_epoch=progress.chain(on_epoch), epochs=progress.wrap(epochs), dist=setup.dist,
            compile=setup.cfg.compile)

    return fit_round


def checkpointer(
    tracker: Tracker, stage: str, config_hash: str, dist: Dist = Dist()
) -> checkpoint.Checkpointer:
    """Checkpoints for the active run, resuming from an interrupted run's last one.

    The interrupted run (same stage and config hash, its process gone) that got
    furthest is continued: its checkpoint is loaded, its per-epoch metrics are copied
    into this run, and this run is tagged ``mlbench.resumed_from``. A checkpoint that
    cannot be read is reported on stderr and training starts from the beginning.
    Under torchrun, rank 0 finds and writes checkpoints and broadcasts the one to
    resume from.
    """
    found = tracker.find_checkpoint(stage, config_hash)
    data = None
    if found is not None:
        run_id = found[0]
        try:
            path = tracker.download(run_id, f"{CHECKPOINT_DIR}/{checkpoint.FILENAME}")
            checkpoint.load(path)  # readable, or not worth broadcasting
            data = path.read_bytes()
        except ConfigError as exc:
            print(f"mlbench: not resuming from run {run_id}: {exc}", file=sys.stderr)
    data = dist.broadcast_bytes(data)
    state = None
    if data is not None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / checkpoint.FILENAME).write_bytes(data)
            state = checkpoint.load(Path(tmp) / checkpoint.FILENAME)
        if found is not None:
            tracker.mark_resumed(found[0], state.epoch)
            tracker.log_history(state.history)
    every_s = tracker.cfg.checkpoint_every if dist.is_main else -1.0
    return checkpoint.Checkpointer(tracker.log_checkpoint, every_s=every_s, resume=state)


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
    return prune(setup, Tracker(tracking) if dist.is_main else Follower(tracking))


def run_train(cfg: RunConfig, tracking: TrackingConfig) -> BaseModel:
    """Check everything, then train and register the base model (or reuse it)."""
    check_reachable(resolve_uri(tracking.tracking_uri))
    dist = from_env(pick_device(cfg.device))
    setup = prepare(cfg, prune=False, dist=dist)
    tracker = Tracker(tracking) if dist.is_main else Follower(tracking)
    found = tracker.find_base(registered_name(cfg), base_key_hash(setup))
    if not dist.broadcast_flag(found is not None):
        return train_base(setup, tracker)
    if tracker.inside_project:  # `mlflow run -e train` opened a run: say what it reused
        with tracker.run("train", f"base-{cfg.model}-{cfg.data.dataset}-s{cfg.seed}",
                         {"mlbench.reused_run_id": found.run_id}):
            tracker.log_params({**cfg.base_key(), "base_run_id": found.run_id})
    return found or BaseModel(run_id="", name=registered_name(cfg), version=None)


__all__ = [
    "Setup",
    "compute_masks",
    "prepare",
    "prune",
    "run_prune",
    "run_train",
    "train_base",
]
