"""The recipe (DESIGN.md, "The flow"), read top to bottom.

    prepare   check everything that can be wrong, build data and a seeded model
    train_base    the dense base model: train, log, register (once per base hash)
    finetune      base weights -> prune (the kind) -> fine-tune (the schedule) -> evaluate
    prune         one tracked prune run around ``finetune``: params, data, artifacts

A prune run (``runs.run_prune``), a sweep cell and a tuning trial all call ``finetune``;
a trial calls it in validation mode, where nothing reads the test split.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mlbench import at_init, rewind
from mlbench.at_init import prune_at_init as at_init_masks
from mlbench.config import PruneConfig, RunConfig, config_hash
from mlbench.data import data_digest, data_source, load_dataset, split_records
from mlbench.device import Precision, pick_device, place_model
from mlbench.distributed import Dist, check_batch, rank_device
from mlbench.engine import evaluate, fit
from mlbench.errors import ConfigError
from mlbench.kinds import Pruned, kind_of, to_cpu
from mlbench.masks import prunable_parameters
from mlbench.metrics import OPS_CONVENTION
from mlbench.models import classifier_name, create_model
from mlbench.names import prune_run_name
from mlbench.predictions import log_predictions
from mlbench.progress import EpochProgress
from mlbench.resume import TrackedCheckpoints, checkpointer
from mlbench.schedules import Checkpoints, NoCheckpoints, Training, schedule_of
from mlbench.setup import Setup, generator, score_batches, seeded
from mlbench.speed import MIN_PAIRS, cost_cap, measured_speedup, speed_budget
from mlbench.tracking import BASE_HASH, BASE_MODEL, CONFIG_HASH, WEIGHTS, BaseModel

if TYPE_CHECKING:  # mlflow loads when a run starts, after the data is read
    from mlbench.tracking import Tracker

EpochHook = Callable[[int, dict[str, float]], None]
_DEFAULT_CALIB_SEED = PruneConfig().calib_seed  # named in a run's name only when not this


# -- 1. check and build ---------------------------------------------------------------
def prepare(cfg: RunConfig, *, prune: bool = True, dist: Dist = Dist()) -> Setup:
    """Validate everything about ``cfg`` that can be wrong and build data and model.

    With ``prune`` the strategy's kind checks the model, target and schedule here, on
    the freshly seeded model: before any base model is trained or loaded, and before any
    run exists. Raises ConfigError (one line) for an unknown strategy, model or dataset,
    missing data, an unavailable device, an unreachable compression, a combination the
    kind cannot do, or (under torchrun) a batch size that does not split.
    """
    cfg.check()
    if prune:
        kind, schedule = kind_of(cfg.prune.strategy), schedule_of(cfg.prune.prune_schedule)
    check_batch(cfg.base.batch_size, dist, "--base-batch-size" if prune else "--batch-size")
    if prune:
        check_batch(cfg.finetune.batch_size, dist, "--batch-size")
    device = rank_device(pick_device(cfg.device), dist)
    splits = load_dataset(cfg.data, device)
    with seeded(cfg.seed):
        model = create_model(cfg.model, splits.info.input_shape, splits.info.num_classes)
    place_model(model, device, cfg.memory_format)
    classifier = None if cfg.prune.prune_classifier else classifier_name(model)
    setup = Setup(cfg, device, splits, model, prunable_parameters(model, classifier), dist)
    if prune:
        schedule.check(setup)
        kind.check(setup, schedule)
        # pruning at initialization: what it can do
        at_init.check(cfg, kind.prunes_at_init, schedule.prunes_repeatedly)
    return setup


def run_name(cfg: RunConfig) -> str:
    """``layer_grad-c8-s0`` (``layer_grad-iterative-c8-s0``; ``wanda-c2-s0-cal1`` with a
    calibration seed other than the default): a prune run in the run list."""
    calib = cfg.prune.calib_seed
    return prune_run_name(cfg.prune.strategy, cfg.prune.compression, cfg.seed,
                          schedule_mark=schedule_of(cfg.prune.prune_schedule).mark,
                          calib_seed=None if calib == _DEFAULT_CALIB_SEED else calib)


# -- 2. the dense base model ------------------------------------------------------------
def base_key_hash(setup: Setup) -> str:
    """The base model's reuse key: its recipe and the content digest of its data.

    A base is never reused for other data: another size, another content or another
    val holdout gives another digest, so another hash.
    """
    return config_hash({**setup.cfg.base_key(), "data_digest": data_digest(setup.splits)})


def registered_name(cfg: RunConfig) -> str:
    """The Model Registry name of a base model: ``mlbench-<dataset>-<model>``."""
    return f"mlbench-{cfg.data.dataset}-{cfg.model}"


def base_run_name(cfg: RunConfig) -> str:
    """``base-lenet-mnist-s0``: how a train run reads in the MLflow run list."""
    return f"base-{cfg.model}-{cfg.data.dataset}-s{cfg.seed}"


def train_base(setup: Setup, tracker: Tracker, tags: Mapping[str, str] | None = None,
               on_run: Callable[[str], None] | None = None) -> BaseModel:
    """Train the dense base model in a ``train`` run, log it and register it.

    ``tags`` are added to the run; ``on_run`` hears the run id at once.
    """
    cfg, model, dist = setup.cfg, setup.model, setup.dist
    base_hash = base_key_hash(setup)
    with tracker.run("train", base_run_name(cfg),
                     {**(tags or {}), BASE_HASH: base_hash, CONFIG_HASH: base_hash}) as run_id:
        if on_run is not None:
            on_run(run_id)
        tracker.log_params(cfg.base_key())
        log_data(setup, tracker)
        precision = Precision(setup.device, cfg.amp)
        progress = EpochProgress(f"train {base_run_name(cfg)}", cfg.base.epochs,
                                 enabled=dist.is_main)
        with seeded(cfg.seed):
            fit(model, setup.splits.train, setup.splits.val, cfg.base,
                generator=generator(cfg.seed), precision=precision, augment=cfg.data.augment,
                on_epoch=progress.chain(
                    lambda epoch, m: tracker.log_metrics(m, step=epoch, wait=False)),
                epochs=progress.wrap(range(1, cfg.base.epochs + 1)),
                checkpoint=checkpointer(tracker, base_hash, model, dist),
                dist=dist, compile=cfg.compile,
                on_state=rewind.snapshot_hook(cfg, tracker, dist.is_main))  # --rewind weights
        test = evaluate(model, setup.splits.test, cfg.base.batch_size, precision, dist=dist)
        tracker.log_metrics({"acc1": test["acc1"], "acc5": test["acc5"], "loss": test["loss"]})
        if not dist.is_main:
            return BaseModel(run_id=run_id, name=registered_name(cfg), version=None)
        info = setup.splits.info
        note = {"model": cfg.model, "input_shape": list(info.input_shape),
                "num_classes": info.num_classes, "base_hash": base_hash}
        tracker.log_base(to_cpu(model), note)
        exported = {}
        if tracker.cfg.log_model:  # an MLflow model (torch.export): seconds more
            exported = {"model": _export_copy(model),
                        "example": torch.zeros(2, *info.input_shape).numpy()}
        version = tracker.registry.register(registered_name(cfg), base_hash, note, **exported)
        tracker.registry.describe(registered_name(cfg), version,
                                  _base_description(setup, base_hash, test["acc1"]),
                                  alias=f"seed-{cfg.seed}")
    return BaseModel(run_id=run_id, name=registered_name(cfg), version=version)


def load_base(setup: Setup, tracker: Tracker, base: BaseModel) -> None:
    """Load the base model's logged weights (safetensors, no pickle) into ``setup.model``.

    Under torchrun rank 0 loads them and broadcasts them to the other ranks.
    """
    if setup.dist.is_main:
        try:
            path = tracker.download(base.run_id, f"{BASE_MODEL}/{WEIGHTS}", cache=True)
        except ConfigError:  # a base trained by mlbench before base_model/ existed
            path = tracker.download(base.run_id, WEIGHTS, cache=True)
        try:  # unreadable weights are one line, not a traceback
            weights = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ConfigError(
                f"the base model's weights (run {base.run_id}, {base.name} version "
                f"{base.version}) cannot be read ({exc}); restore them, or delete that model "
                "version so that a new base model is trained") from None
        setup.model.load_state_dict(weights)
    setup.dist.broadcast_module(setup.model)


# -- 3. prune, fine-tune, evaluate --------------------------------------------------------
@dataclass
class Outcome:
    """What ``finetune`` made: the fine-tuned pruned network, the base, and the numbers."""

    pruned: Pruned
    dense: nn.Module
    metrics: dict[str, float]
    rows: list[dict[str, object]] = field(default_factory=list)
    # the test split's (argmax labels, true labels), in split order, from its evaluation
    predicted: tuple[torch.Tensor, torch.Tensor] | None = None


def finetune(setup: Setup, *, on_epoch: EpochHook = lambda epoch, metrics: None,
             checkpoints: Checkpoints | None = None, progress: EpochProgress | None = None,
             validation: bool = False,
             rewind_to: Mapping[str, torch.Tensor] | None = None,
             started: float | None = None) -> Outcome:
    """Prune the base weights in ``setup.model`` and fine-tune along the run's schedule.

    ``on_epoch`` hears every fine-tuning epoch (it may raise to stop the run there);
    ``checkpoints`` resume and keep the schedule's state (none: no checkpoints);
    ``rewind_to`` are the weights ``--rewind weights`` goes back to (``rewind.rewind_state``);
    ``started`` (``time.perf_counter()``) is when the run began: measuring speed may cost
    a share of the time since (default: since this call).
    With ``--prune-at init`` the seeded initialization is pruned instead of the trained
    base and the masked network trains from scratch with the base recipe (SNIP, GraSP and
    SynFlow as published; ``mlbench/at_init.py``).

    Returns the final metrics of DESIGN.md: acc1, acc5, loss, base_/pre_ acc1/acc5
    (test split), sizes, MACs, both speedup conventions, measured speed. In
    ``validation`` mode (tuning) nothing reads the test split: the metrics are the last
    fine-tuning epoch's (``val_acc1``, ...), and no size or speed is measured.
    """
    started = time.perf_counter() if started is None else started
    cfg, dist = setup.cfg, setup.dist
    kind, schedule = kind_of(cfg.prune.strategy), schedule_of(cfg.prune.prune_schedule)
    precision = Precision(setup.device, cfg.amp)
    batch, test = cfg.finetune.batch_size, setup.splits.test
    from_init = cfg.prune.prune_at == "init"
    results: dict[str, float] = {}
    if not validation:
        results |= _prefixed("base_", evaluate(setup.model, test, batch, precision, dist=dist))
    dense = copy.deepcopy(setup.model)  # the base: rewinding, sizes, measured speed
    batches = score_batches(setup)  # the fixed scoring (calibration) batches
    if from_init:  # score the seeded init, prune it, then train it with the base recipe
        pruned = Pruned(setup.model, at_init_masks(setup, batches))
        trained = dataclasses.replace(setup, cfg=dataclasses.replace(cfg, finetune=cfg.base))
    else:
        pruned = kind.prune(setup, batches)
        trained = setup
    setup.model = pruned.model
    # one-shot with no fine-tuning (post-training): the network evaluated now is the
    # result; evaluating it again would give the very same numbers
    untouched = (not schedule.prunes_repeatedly and not from_init
                 and cfg.finetune.epochs == 0)
    predicted: list[tuple[torch.Tensor, torch.Tensor]] = []  # test predictions, same pass
    keep = None if dist.enabled else predicted
    pre: dict[str, float] = {}
    if not validation:
        pre = evaluate(setup.model, test, batch, precision, dist=dist,
                       predicted=keep if untouched else None)
        results |= _prefixed("pre_", pre)
    last: dict[str, float] = {}

    def heard(epoch: int, metrics: dict[str, float]) -> None:
        on_epoch(epoch, metrics)
        last.update(metrics)

    training = Training(trained, kind, dense, batches, precision,
                        checkpoints or NoCheckpoints(), heard,
                        progress or EpochProgress("fine-tune", 0, enabled=False), rewind_to)
    with seeded(cfg.seed):
        pruned = schedule.run(training, pruned)
    setup.model = pruned.model
    if validation:
        if not last:  # no fine-tuning epoch: the pruned base on val
            last = _prefixed("val_", evaluate(setup.model, setup.splits.val, batch, precision))
        return Outcome(pruned, dense, dict(last))
    results |= pre if untouched else evaluate(setup.model, test, batch, precision,
                                              dist=dist, predicted=keep)
    sizes, rows = kind.sizes(setup, dense, pruned)
    # measuring: < 5% of the run, or a floor of seconds where the run trains nothing
    budget = speed_budget(time.perf_counter() - started, trains(cfg))
    results |= sizes | _measure_speed(setup, dense, pruned, budget)
    results["train_epochs_total"] = cfg.base.epochs + (0 if from_init else cfg.finetune.epochs)
    del results["base_loss"], results["pre_loss"]
    return Outcome(pruned, dense, results, rows,
                   tuple(torch.cat(t) for t in zip(*predicted, strict=True))  # type: ignore[arg-type]
                   if predicted else None)


def trains(cfg: RunConfig) -> bool:
    """Whether a prune run trains the network itself: fine-tuning epochs, or training
    from scratch after pruning at initialization (its measured speed's cost cap)."""
    return cfg.prune.prune_at == "init" or cfg.finetune.epochs > 0


def _measure_speed(setup: Setup, dense: nn.Module, pruned: Pruned,
                   budget_s: float = float("inf")) -> dict[str, float]:
    """Measured speed of the dense base against the pruned network, on the kind's
    kernels (empty if switched off, and on ranks other than the first), with its 95%
    interval; measuring costs at most ``budget_s`` seconds (``--speed-repeats`` caps the
    interleaved sample pairs)."""
    repeats = setup.cfg.prune.speed_repeats
    if repeats == 0 or not setup.dist.is_main:
        return {}
    base, model, extra = kind_of(setup.cfg.prune.strategy).timed(setup, dense, pruned)
    with torch.no_grad():
        return measured_speedup(base, model, setup.splits.info.input_shape,
                                setup.cfg.finetune.batch_size, setup.device,
                                budget_s=budget_s, max_pairs=max(repeats, MIN_PAIRS)) | extra


# -- 4. one tracked prune run -------------------------------------------------------------
def prune(setup: Setup, tracker: Tracker, base: BaseModel | Callable[[], BaseModel], *,
          parent_run_id: str | None = None, tags: Mapping[str, str] | None = None,
          on_run: Callable[[str], None] | None = None) -> dict[str, float]:
    """One (strategy, compression, seed) as a ``prune`` run: ``finetune``, logged.

    ``base`` is the base model, or how to obtain it inside the run (``prune`` and
    ``mlflow run -e main``: the project's run is the prune run, a train run its child).
    ``parent_run_id`` nests the run under a run of another process (the sweep's);
    ``tags`` are added to the run, and ``on_run`` hears its id as soon as it exists.

    Returns the final metrics (see ``finetune``).
    """
    cfg, dist = setup.cfg, setup.dist
    kind, run_hash = kind_of(cfg.prune.strategy), cfg.run_hash()
    with tracker.run("prune", run_name(cfg), {**(tags or {}), CONFIG_HASH: run_hash},
                     parent_run_id=parent_run_id) as run_id:
        started = time.perf_counter()  # measuring speed costs a share of the run from here
        if on_run is not None:
            on_run(run_id)
        base = base() if callable(base) else base
        tracker.log_params({
            **cfg.flat(),
            "base_run_id": base.run_id,
            "base_model": f"{base.name}/{base.version}" if base.version else "",
            "ops_convention": OPS_CONVENTION,
            "speed_kernels": kind.kernels(setup),
            "speed_cost_cap": cost_cap(trains(cfg)),
        })
        log_data(setup, tracker)
        load_base(setup, tracker, base)
        from_init = cfg.prune.prune_at == "init"  # trains from scratch: the base's budget
        outcome = finetune(
            setup,
            on_epoch=lambda epoch, m: tracker.log_metrics(m, step=epoch, wait=False),
            checkpoints=TrackedCheckpoints(tracker, run_hash, dist),
            progress=EpochProgress(
                f"{'train' if from_init else 'fine-tune'} {run_name(cfg)}",
                cfg.base.epochs if from_init else cfg.finetune.epochs, enabled=dist.is_main),
            rewind_to=rewind.rewind_state(setup, tracker, base), started=started)
        if dist.is_main:
            _log_artifacts(tracker, setup, base, outcome)
            # per-image test predictions: the report's paired image statistics
            log_predictions(tracker, setup.model, setup.splits.test, cfg.finetune.batch_size,
                            Precision(setup.device, cfg.amp), outcome.predicted)
            if tracker.cfg.log_model:  # no copy of the model when none is logged
                tracker.log_pruned(_export_copy(setup.model),
                                   torch.zeros(2, *setup.splits.info.input_shape).numpy())
        tracker.log_metrics(outcome.metrics)
    return outcome.metrics


def log_data(setup: Setup, tracker: Tracker) -> None:
    """The active run's splits as MLflow dataset inputs (train, val, test) and digest."""
    if setup.dist.is_main:
        records = split_records(setup.splits, data_source(setup.cfg.data))
        tracker.log_datasets(records, data_digest(setup.splits))


def _log_artifacts(tracker: Tracker, setup: Setup, base: BaseModel, outcome: Outcome) -> None:
    """config.json, the kind's files, layers.csv and weights.safetensors: enough for
    ``load_pruned`` to rebuild the network without pickle."""
    cfg, info = setup.cfg, setup.splits.info
    resolved = {**cfg.flat(), "base_run_id": base.run_id, "config_hash": cfg.run_hash(),
                "input_shape": list(info.input_shape), "num_classes": info.num_classes}
    tracker.log_dict(resolved, "config.json")
    meta = {"base_run_id": base.run_id, "strategy": cfg.prune.strategy}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for path in kind_of(cfg.prune.strategy).save(outcome.pruned, setup, folder, meta):
            tracker.log_file(path)
        table = folder / "layers.csv"
        with table.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(outcome.rows[0]))
            writer.writeheader()
            writer.writerows(outcome.rows)
        tracker.log_file(table)
        weights = folder / WEIGHTS
        save_file(to_cpu(setup.model), str(weights))
        tracker.log_file(weights)


def _base_description(setup: Setup, base_hash: str, acc1: float) -> str:
    """What a registered base model is, for its model version's description."""
    cfg = setup.cfg
    return (
        f"Dense base model of mlbench: {cfg.model} on {cfg.data.dataset} (data digest "
        f"{data_digest(setup.splits)}), seed {cfg.seed}, recipe hash {base_hash}, test acc1 "
        f"{acc1:.4f}. Every strategy at seed {cfg.seed} prunes these weights. Load them with "
        f"mlbench.load_base('models:/{registered_name(cfg)}@seed-{cfg.seed}') (safetensors, "
        "no pickle)."
    )


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {prefix + k: v for k, v in metrics.items()}


def _export_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).cpu().eval()


__all__ = [
    "Outcome",
    "Setup",
    "base_key_hash",
    "base_run_name",
    "finetune",
    "load_base",
    "log_data",
    "prepare",
    "prune",
    "registered_name",
    "run_name",
    "train_base",
]
