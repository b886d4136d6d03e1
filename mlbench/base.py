"""The dense base model of a (dataset, model, seed): found in the Model Registry, or trained.

Every strategy at a seed prunes the very same base weights (the first fairness rule).
Within a sweep the queue hands each seed's base model to exactly one worker; outside one
(``train``, ``prune``, ``tune``) the registry is looked up first and a model is trained
only if none with the same base hash is registered.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from mlbench import rewind
from mlbench.config import RunConfig, TrackingConfig
from mlbench.data import data_digest
from mlbench.device import Precision, pick_device
from mlbench.distributed import from_env
from mlbench.engine import evaluate, fit
from mlbench.pipeline import (
    Setup,
    _cpu_state,
    base_key_hash,
    generator,
    log_data,
    prepare,
    seeded,
)
from mlbench.progress import EpochProgress
from mlbench.resume import checkpointer
from mlbench.tracking import (
    BASE_HASH,
    CONFIG_HASH,
    BaseModel,
    Follower,
    check_reachable,
    resolve_uri,
)

if TYPE_CHECKING:  # mlflow loads when the run starts, after the data is read
    from mlbench.tracking import Tracker


def registered_name(cfg: RunConfig) -> str:
    """The Model Registry name of a base model: ``mlbench-<dataset>-<model>``."""
    return f"mlbench-{cfg.data.dataset}-{cfg.model}"


def base_run_name(cfg: RunConfig) -> str:
    """``base-lenet-mnist-s0``: how a train run reads in the MLflow run list."""
    return f"base-{cfg.model}-{cfg.data.dataset}-s{cfg.seed}"


def train_base(setup: Setup, tracker: Tracker, tags: dict[str, str] | None = None,
               on_run: object = None) -> BaseModel:
    """Train the dense base model in a ``train`` run, log it and register it.

    ``tags`` are added to the run; ``on_run`` (a callable) hears the run id at once.
    """
    cfg, model, dist = setup.cfg, setup.model, setup.dist
    base_hash = base_key_hash(setup)
    run_tags = {**(tags or {}), BASE_HASH: base_hash, CONFIG_HASH: base_hash}
    with tracker.run("train", base_run_name(cfg), run_tags) as run_id:
        if callable(on_run):
            on_run(run_id)
        tracker.log_params(cfg.base_key())
        log_data(setup, tracker)
        precision = Precision(setup.device, cfg.amp)
        progress = EpochProgress(f"train {base_run_name(cfg)}", cfg.base.epochs,
                                 enabled=dist.is_main)
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
                checkpoint=checkpointer(tracker, base_hash, model, dist),
                dist=dist,
                compile=cfg.compile,
                on_state=rewind.snapshot_hook(cfg, tracker, dist.is_main),  # issue 19
            )
        test = evaluate(model, setup.splits.test, cfg.base.batch_size, precision, dist=dist)
        tracker.log_metrics({"acc1": test["acc1"], "acc5": test["acc5"], "loss": test["loss"]})
        if not dist.is_main:
            return BaseModel(run_id=run_id, name=registered_name(cfg), version=None)
        note = {"model": cfg.model, "input_shape": list(setup.splits.info.input_shape),
                "num_classes": setup.splits.info.num_classes, "base_hash": base_hash}
        tracker.log_base(_cpu_state(model), note)
        exported = {}
        if tracker.cfg.log_model:  # an MLflow model (torch.export): seconds more
            exported = {"model": _export_copy(model),
                        "example": torch.zeros(2, *setup.splits.info.input_shape).numpy()}
        version = tracker.registry.register(registered_name(cfg), base_hash, note, **exported)
        tracker.registry.describe(registered_name(cfg), version,
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
        f"mlbench.load_base('models:/{registered_name(cfg)}@seed-{cfg.seed}') (safetensors, "
        "no pickle)."
    )


def find_or_train_base(setup: Setup, tracker: Tracker) -> BaseModel:
    """Reuse the registered base model with the same base hash, or train one.

    Under torchrun rank 0 looks, and all ranks train together if need be.
    """
    name, base_hash = registered_name(setup.cfg), base_key_hash(setup)
    found = tracker.registry.find(name, base_hash)
    if setup.dist.broadcast_flag(found is not None):
        return found or BaseModel(run_id="", name=name, version=None)
    return train_base(setup, tracker)


def _export_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).cpu().eval()


def run_train(cfg: RunConfig, tracking: TrackingConfig) -> BaseModel:
    """Check everything, then train and register the base model (or reuse it)."""
    check_reachable(resolve_uri(tracking.tracking_uri))
    dist = from_env(pick_device(cfg.device))
    setup = prepare(cfg, prune=False, dist=dist)
    from mlbench.tracking import Tracker  # imports mlflow

    tracker = Tracker(tracking) if dist.is_main else Follower(tracking)
    found = tracker.registry.find(registered_name(cfg), base_key_hash(setup))
    if not dist.broadcast_flag(found is not None):
        return train_base(setup, tracker)
    if tracker.inside_project:  # `mlflow run -e train` opened a run: say what it reused
        with tracker.run("train", base_run_name(cfg), {"mlbench.reused_run_id": found.run_id}):
            tracker.log_params({**cfg.base_key(), "base_run_id": found.run_id})
    return found or BaseModel(run_id="", name=registered_name(cfg), version=None)


__all__ = ["base_run_name", "find_or_train_base", "registered_name", "run_train", "train_base"]
