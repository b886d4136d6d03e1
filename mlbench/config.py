"""Typed, validated configuration: one frozen dataclass per concern.

Every field carries its help text and its bounds; ``check`` validates a config once,
at the edge, with messages that name the option, the bad value and what is allowed.
``RunConfig.flat()`` is what goes into MLflow params (DESIGN.md names: fine-tuning
fields unprefixed, base-model training fields prefixed ``base_``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from mlbench.catalog import names, schedule_trait
from mlbench.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")
PRUNE_SCHEDULES = names("schedule")  # registered in mlbench/schedules/, read without torch
# issue 19: weights / lr as published (Frankle et al. 2020 / Renda et al. 2020, from
# --rewind-epoch of the base training); finetune and dense_weights: what mlbench did
# before under the names lr and weights (finetune stays the default: same numbers)
REWINDS = ("finetune", "dense_weights", "weights", "lr")
PRUNE_AT = ("trained", "init")  # issue 19: pruning after training, or at initialization
INIT_CHECKS = ("none", "layer_shuffle", "reinit")  # Frankle et al. 2021's sanity checks


# Upper bounds (issue 20): generous for real work, but a typo such as 1000000 rounds or a
# seed beyond what NumPy accepts is refused before any work instead of running for ever.
MAX_EPOCHS = 100_000
MAX_SEED = 2**32 - 1  # numpy.random.default_rng and torch.manual_seed both take it
MAX_COMPRESSION = 1e6
MAX_ROUNDS = 1_000
MAX_SYNTHETIC_VALUES = 3 * 1024 * 1024  # values per synthetic sample


def _opt(default: Any, help: str, **bounds: Any) -> Any:
    """A dataclass field with help text and bounds (gt, ge, lt, le, choices) for ``check``.

    ``items`` ("str", "int" or "float") marks a comma-separated list option; its bounds
    then hold for every item. ``result=False`` marks an option that never changes a run's
    numbers (a path, the device): it is left out of the run's hash. ``axis=True``: a
    sweep's grid varies it per cell; ``schedule=True``: it belongs to the pruning schedule.
    """
    return field(default=default, metadata={"help": help, **bounds})


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, where its files are, and how it is split and augmented."""

    dataset: str = _opt("digits", "dataset name (see `python -m mlbench list`)")
    data_dir: str = _opt("data", "folder holding the dataset files (torchvision layouts)",
                         result=False)
    download: bool = _opt(False, "download torchvision datasets into --data-dir if missing",
                          result=False)
    val_fraction: float = _opt(0.1, "fraction of the training data held out as val", gt=0, lt=1)
    augment: bool = _opt(True, "apply the dataset's standard training augmentation")
    loader_workers: int = _opt(2, "DataLoader worker processes (large datasets only)", ge=0,
                          le=256, result=False)
    synthetic_shape: str = _opt("3x32x32", "synthetic: input shape CxHxW")
    synthetic_classes: int = _opt(10, "synthetic: number of classes", ge=2,
                               le=100_000)
    synthetic_samples: int = _opt(2048, "synthetic: training samples (test gets a quarter)",
                                   ge=8, le=10_000_000)
    seq_len: int = _opt(64, "text datasets: characters per training and evaluation window", ge=1,
                        le=65_536)
    train_chars: int = _opt(0, "text datasets: train reads only the first N characters of "
                            "its works (0: all of them)", ge=0, le=10**12)
    eval_chars: int = _opt(0, "text datasets: val and test read only the first N characters "
                           "of their works (0: all of them)", ge=0, le=10**12)

    def input_shape(self) -> tuple[int, int, int]:
        """``synthetic_shape`` parsed into (channels, height, width)."""
        try:
            c, h, w = (int(x) for x in self.synthetic_shape.lower().split("x"))
        except ValueError:
            raise ConfigError(
                f"--synthetic-shape must look like 3x32x32, got {self.synthetic_shape!r}"
            ) from None
        if min(c, h, w) < 1:
            raise ConfigError(f"--synthetic-shape must be positive, got {self.synthetic_shape!r}")
        if c * h * w > MAX_SYNTHETIC_VALUES:  # the whole set is made in memory at once
            raise ConfigError(f"--synthetic-shape {self.synthetic_shape} has {c * h * w:,} "
                              f"values per sample; allowed: at most {MAX_SYNTHETIC_VALUES:,} "
                              "(3x1024x1024)")
        return c, h, w


@dataclass(frozen=True)
class OptimConfig:
    """One training recipe: optimizer, learning-rate schedule and budget."""

    epochs: int = _opt(5, "training epochs", ge=0, le=MAX_EPOCHS)
    batch_size: int = _opt(64, "samples per batch", ge=1, le=65_536)
    optimizer: str = _opt("sgd", "optimizer", choices=OPTIMIZERS)
    lr: float = _opt(0.01, "peak learning rate", gt=0, le=10)
    momentum: float = _opt(0.9, "SGD momentum", ge=0, lt=1)
    nesterov: bool = _opt(False, "SGD with Nesterov momentum")
    weight_decay: float = _opt(5e-4, "L2 weight decay (decoupled for adamw)", ge=0,
                                 le=1)
    schedule: str = _opt("cosine", "learning-rate schedule", choices=SCHEDULES)
    warmup_epochs: float = _opt(0.0, "linear warm-up epochs before the schedule", ge=0,
                                 le=MAX_EPOCHS)
    step_size: int = _opt(30, "schedule=step: epochs between decays", ge=1,
                            le=MAX_EPOCHS)
    gamma: float = _opt(0.1, "schedule=step: decay factor", gt=0, le=1)


@dataclass(frozen=True)
class PruneConfig:
    """What to prune and how hard."""

    strategy: str = _opt("global_weight", "pruning strategy (see `python -m mlbench list`)",
                         axis=True)
    compression: float = _opt(8.0, "target compression: params / nonzero params", ge=1,
                             le=MAX_COMPRESSION, axis=True)
    prune_classifier: bool = _opt(False, "also prune the final classifier layer")
    score_batches: int = _opt(4, "training batches summed for gradient-based scores",
                              ge=1, le=100_000)
    prune_schedule: str = _opt(
        "oneshot", "pruning schedule: oneshot, iterative (k rounds of prune + fine-tune) or "
        "gradual (Zhu & Gupta's cubic sparsity ramp during fine-tuning); all get the same "
        "total fine-tuning epochs", choices=PRUNE_SCHEDULES, axis=True,
        schedule=True)
    prune_rounds: int = _opt(3, "iterative: prune + fine-tune rounds (at most --epochs); "
                             "gradual: pruning steps", ge=1, le=MAX_ROUNDS, schedule=True)
    rewind: str = _opt(
        "finetune", "iterative: what each round starts from. finetune: the weights as they "
        "are, the fine-tuning schedule restarted; dense_weights: surviving weights reset to "
        "the final dense base's, schedule restarted; weights: surviving weights reset to "
        "the base training's at --rewind-epoch, its schedule replayed from there (Frankle "
        "et al. 2020); lr: weights kept, the base training's schedule replayed from "
        "--rewind-epoch (Renda et al. 2020)", choices=REWINDS, schedule=True)
    rewind_epoch: int = _opt(
        0, "--rewind weights/lr: the base training's epoch k to rewind to (0: the seeded "
        "initialization); at most --base-epochs", ge=0, le=MAX_EPOCHS)
    prune_at: str = _opt(
        "trained", "when to prune: trained (score the trained base, prune, fine-tune) or "
        "init (score the base's seeded initial weights, prune, train from scratch with the "
        "base recipe, as SNIP, GraSP and SynFlow were published)", choices=PRUNE_AT)
    init_check: str = _opt(
        "none", "--prune-at init: Frankle et al. 2021's sanity checks: layer_shuffle (same "
        "layer-wise sparsity, kept weights shuffled within each layer) or reinit (same "
        "masks, freshly drawn initial weights)", choices=INIT_CHECKS)
    synflow_rounds: int = _opt(
        100, "--prune-at init with synflow: data-free rounds, exponential schedule "
        "(Tanaka et al.)", ge=1, le=10_000)
    speed_repeats: int = _opt(
        30, "most interleaved (dense, pruned) timing pairs per measured speedup, at least 3 "
        "are taken; pairs stop once the 95 percent interval is within 2 percent or measuring "
        "would cost 4 percent of the run (0: do not measure)", ge=0, le=100_000, result=False)
    calib_samples: int = _opt(128, "post-training strategies: calibration samples (windows or "
                              "images), drawn from the training split only", ge=1, le=1_000_000)
    calib_seq_len: int = _opt(64, "post-training strategies on text: characters per "
                              "calibration window (at most the model's context)", ge=1,
                              le=65_536)
    calib_seed: int = _opt(0, "post-training strategies: seed of the calibration draw", ge=0,
                           le=MAX_SEED)


BASE_DEFAULTS = OptimConfig(epochs=20, batch_size=64, lr=0.05, weight_decay=5e-4)
FINETUNE_DEFAULTS = OptimConfig(epochs=5, batch_size=64, lr=0.03, weight_decay=5e-4)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's numbers (tracking settings live apart)."""

    data: DataConfig = field(default_factory=DataConfig)
    base: OptimConfig = BASE_DEFAULTS
    finetune: OptimConfig = FINETUNE_DEFAULTS
    prune: PruneConfig = field(default_factory=PruneConfig)
    model: str = _opt("lenet", "model name (see `python -m mlbench list`)")
    seed: int = _opt(0, "seed of everything random in the run", ge=0, le=MAX_SEED)
    device: str = _opt("auto", "auto, cpu, cuda, cuda:N or mps", result=False)
    amp: bool = _opt(True, "mixed precision on CUDA")
    memory_format: str = _opt("auto", "auto (channels_last on CUDA), channels_last or "
                              "contiguous", choices=("auto", "channels_last", "contiguous"),
                              result=False)
    compile: bool = _opt(False, "torch.compile the model for training", result=False)

    def flat(self) -> dict[str, Any]:
        """All fields as one flat dict with DESIGN.md's names (MLflow params)."""
        out: dict[str, Any] = {**dataclasses.asdict(self.data), "model": self.model}
        out.update(dataclasses.asdict(self.prune))
        out.update(dataclasses.asdict(self.finetune))
        out.update({f"base_{k}": v for k, v in dataclasses.asdict(self.base).items()})
        out.update({k: getattr(self, k) for k in _TOP if k != "model"})
        return out

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> RunConfig:
        """Build from a flat dict (CLI options, a preset); unknown keys are an error."""
        values = dict(values)
        parts: dict[str, dict[str, Any]] = {"data": {}, "prune": {}, "finetune": {}, "base": {}}
        owners = {
            "data": DataConfig,
            "prune": PruneConfig,
            "finetune": OptimConfig,
        }
        for key in list(values):
            if key.startswith("base_") and key[5:] in _names(OptimConfig):
                parts["base"][key[5:]] = values.pop(key)
                continue
            for part, owner in owners.items():
                if key in _names(owner):
                    parts[part][key] = values.pop(key)
                    break
        top = {k: values.pop(k) for k in _TOP if k in values}
        if values:
            raise ConfigError(
                f"unknown option(s) {', '.join(sorted(values))}; allowed: "
                f"{', '.join(sorted(RunConfig().flat()))}"
            )
        cfg = cls(
            data=DataConfig(**parts["data"]),
            prune=PruneConfig(**parts["prune"]),
            finetune=dataclasses.replace(FINETUNE_DEFAULTS, **parts["finetune"]),
            base=dataclasses.replace(BASE_DEFAULTS, **parts["base"]),
            **top,
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        """Validate types and bounds of every field; raise ConfigError naming the option."""
        check(self.data)
        check(self.prune)
        check(self.finetune)
        check(self.base, prefix="base_")
        for f in dataclasses.fields(self):
            if f.name in _TOP:
                _check_value(f.name, getattr(self, f.name), _TYPES[f.type], f.metadata)
        self._check_together()
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(
                f"--device must be one of auto, cpu, cuda, mps (or cuda:N), got {self.device!r}"
            )
        self.data.input_shape()
        if self.prune.rewind in ("weights", "lr") and self.prune.rewind_epoch > self.base.epochs:
            raise ConfigError(  # issue 19: the rewind point is an epoch of base training
                f"--rewind-epoch must be <= --base-epochs ({self.base.epochs}), got "
                f"{self.prune.rewind_epoch}")

    def _check_together(self) -> None:
        """Bounds that tie two options together (each alone was checked already)."""
        if self.base.epochs < 1:  # every prune run starts from a trained, registered base
            raise ConfigError(f"--base-epochs must be >= 1 (the base model is trained and "
                              f"registered for every later run), got {self.base.epochs}")
        prune = self.prune
        rounds = schedule_trait(prune.prune_schedule, "rounds")
        if rounds and prune.prune_rounds > self.finetune.epochs:
            raise ConfigError(
                f"--prune-rounds {prune.prune_rounds} is more than --epochs "
                f"{self.finetune.epochs}: {prune.prune_schedule} pruning fine-tunes at least "
                f"one epoch per round; allowed: 1 to {self.finetune.epochs} rounds, or more "
                "epochs")

    def base_key(self) -> dict[str, Any]:
        """The fields that determine the dense base model (its reuse key).

        A base that must save its weights at a rewind epoch (``--rewind weights``, k > 0)
        has k in its key (issue 19): bases with different snapshots are distinct.
        """
        text = self.data.dataset in TEXT_DATASETS  # text-only fields: in text bases' keys
        data = {k: v for k, v in dataclasses.asdict(self.data).items()
                if k in _RESULT_DATA and (text or k not in _TEXT_DATA)}
        p = self.prune
        if schedule_trait(p.prune_schedule, "rewinds") and p.rewind == "weights" \
                and p.rewind_epoch > 0:
            data["base_rewind_epoch"] = p.rewind_epoch
        return {
            **data,
            "model": self.model,
            "seed": self.seed,
            "amp": self.amp,
            **{f"base_{k}": v for k, v in dataclasses.asdict(self.base).items()},
        }

    def base_hash(self) -> str:
        """Hash identifying the base model: same hash, same dense weights."""
        return config_hash(self.base_key())

    def run_key(self) -> dict[str, Any]:
        """The fields that determine a prune run's result (paths and device left out)."""
        flat = self.flat()
        for key in _NOT_RESULT:  # paths, device and the like: the same numbers anywhere
            flat.pop(key)
        if flat["dataset"] not in TEXT_DATASETS:  # image runs keep the hashes they had
            for key in _TEXT_DATA:
                flat.pop(key)
        for key in _CALIB:  # at their defaults: every other run keeps the hash it had
            if flat[key] == getattr(PruneConfig(), key):
                flat.pop(key)
        if flat["prune_schedule"] == PruneConfig().prune_schedule:  # the hashes they had
            for key in SCHEDULE_KEYS:
                flat.pop(key)
        # issue 19: new keys only where they change the numbers, so other hashes stay
        if flat.get("rewind") not in ("weights", "lr"):
            flat.pop("rewind_epoch")
        if flat["prune_at"] == "trained":
            for key in ("prune_at", "init_check", "synflow_rounds"):
                flat.pop(key)
        elif flat["strategy"] != "synflow":
            flat.pop("synflow_rounds")
        return flat

    def run_hash(self) -> str:
        """Hash identifying a prune run's result: same hash, same numbers."""
        return config_hash(self.run_key())


MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
# Derived from the fields (issue 17: no hand-kept list of option names): RunConfig's own
# options, and those declared ``result=False`` (they never change a run's numbers).
_TOP = tuple(f.name for f in dataclasses.fields(RunConfig) if "help" in f.metadata)
_NOT_RESULT = tuple(
    f.name for cls in (DataConfig, RunConfig, PruneConfig) for f in dataclasses.fields(cls)
    if f.metadata.get("result") is False)
# A sweep's cells vary these (``axis``: a grid axis); a one-shot run's hash leaves out
# those of the schedule (``schedule``), so one-shot runs keep the hashes they had.
CELL_KEYS = tuple(f.name for f in dataclasses.fields(PruneConfig) if f.metadata.get("axis"))
SCHEDULE_KEYS = tuple(f.name for f in dataclasses.fields(PruneConfig)
                      if f.metadata.get("schedule"))
_RESULT_DATA = {f.name for f in dataclasses.fields(DataConfig)
                if f.metadata.get("result") is not False}

# Fields only text datasets read: in their hashes, out of every other run's.
_TEXT_DATA = ("seq_len", "train_chars", "eval_chars")
TEXT_DATASETS = ("shakespeare", "text")
_CALIB = ("calib_samples", "calib_seq_len", "calib_seed")


_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


def config_hash(values: dict[str, Any]) -> str:
    """A short, stable hash of a flat dict (sorted JSON, sha256)."""
    blob = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def check(obj: Any, prefix: str = "") -> None:
    """Check every field of a config dataclass against its type and metadata bounds."""
    for f in dataclasses.fields(obj):
        _check_value(prefix + f.name, getattr(obj, f.name), _TYPES[f.type], f.metadata)


def option_name(key: str) -> str:
    """The CLI spelling of a flat config key: ``base_lr`` -> ``--base-lr``."""
    return "--" + key.replace("_", "-")


def _check_value(key: str, value: Any, kind: type, bounds: Any) -> None:
    name = option_name(key)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if kind is int and (not is_number or not math.isfinite(value) or value != int(value)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if kind is float and (not is_number or not math.isfinite(value)):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    if "items" in bounds:  # a list option: its bounds hold per item (mlbench.grid.parse_list)
        return
    if "choices" in bounds and value not in bounds["choices"]:
        raise ConfigError(
            f"{name} must be one of {', '.join(bounds['choices'])}, got {value!r}"
        )
    for op, test, text in (
        ("gt", lambda a, b: a > b, ">"),
        ("ge", lambda a, b: a >= b, ">="),
        ("lt", lambda a, b: a < b, "<"),
        ("le", lambda a, b: a <= b, "<="),
    ):
        if op in bounds and not test(value, bounds[op]):
            raise ConfigError(f"{name} must be {text} {bounds[op]}, got {value!r}"
                              f"{allowed_range(bounds, prefix='; allowed: ')}")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def allowed_range(bounds: Any, prefix: str = "") -> str:
    """``bounds`` (gt, ge, lt, le) as text: ``1 to 1000``, or ``0 < value < 1`` where a
    bound is exclusive; empty unless bounded on both sides."""
    low = next((k for k in ("ge", "gt") if k in bounds), None)
    high = next((k for k in ("le", "lt") if k in bounds), None)
    if low is None or high is None:
        return ""
    a, b = _number(bounds[low]), _number(bounds[high])
    if (low, high) == ("ge", "le"):
        return f"{prefix}{a} to {b}"
    return (f"{prefix}{a} {'<=' if low == 'ge' else '<'} value "
            f"{'<=' if high == 'le' else '<'} {b}")


@dataclass(frozen=True)
class TrackingConfig:
    """Where runs go. Not part of any config hash: the same run on any server is the same."""

    tracking_uri: str | None = _opt(
        None, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    experiment: str | None = _opt(
        None, "MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME, else MLflow's Default, "
        "where `mlflow run` puts its runs too; ignored inside `mlflow run`)")
    register: bool = _opt(True, "register base models in the MLflow Model Registry")
    checkpoint_every: float = _opt(
        60.0, "seconds between training checkpoints, uploaded as artifacts of the run "
        "(0: every epoch, < 0: never); long runs resume from their last one")
    log_model: bool = _opt(
        False, "log base and pruned networks as MLflow models too (torch.export, "
        "servable; costs seconds each)")
    give_up: float = _opt(  # issue 20
        30.0, "seconds a tracking server that answers with errors (HTTP 5xx) is retried "
        "before the command stops and names it (a server that does not answer, e.g. while "
        "it restarts, is waited for an hour, training going on)", gt=0, le=86400)

    def check(self) -> None:
        """A ConfigError for an empty experiment or a tracking URI that cannot be one."""
        if self.experiment is not None and not self.experiment.strip():
            raise ConfigError("--experiment must name an experiment, got ''; leave it out "
                              "for $MLFLOW_EXPERIMENT_NAME or MLflow's Default")
        give_up = next(f for f in dataclasses.fields(self) if f.name == "give_up")
        _check_value("give_up", self.give_up, float, give_up.metadata)  # issue 20
        uri = self.tracking_uri
        if uri is not None and "://" in uri and not re.match(
            r"(sqlite|file|https?|postgresql(\+\w+)?|mysql(\+\w+)?|mssql|databricks)://", uri
        ):
            raise ConfigError(f"--tracking-uri {uri}: unknown scheme; use sqlite:///PATH, "
                              "http(s)://HOST:PORT, postgresql://..., or a folder")
        if uri is not None and re.match(r"\w+:/[^/]", uri):
            raise ConfigError(f"--tracking-uri {uri}: not a URI (one slash after the scheme); "
                              "use sqlite:///PATH, http(s)://HOST:PORT, or a folder")
