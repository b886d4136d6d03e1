"""The vocabulary of mlbench (DESIGN.md): metric names, labels and units, tag names, order.

Tracking, the report and the CLI spell every name through this module, so a saved MLflow
query, a report column and a CLI line all mean the same thing. It imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- tags ---------------------------------------------------------------------------
STAGE = "mlbench.stage"  # train, prune, sweep, tune, trial, report
CONFIG_HASH = "mlbench.config_hash"  # a run's result key: same hash, same numbers
BASE_HASH = "mlbench.base_hash"  # a base model's key (its data digest included)
VERSION = "mlbench.version"
GIT_COMMIT = "mlbench.git_commit"
DATA_DIGEST = "mlbench.data_digest"  # content digest of the train/val/test splits
TUNED = "mlbench.tuned"  # "true" on prune runs of a tuned configuration
TUNE_RUN_ID = "mlbench.tune_run_id"  # ... and the tune run that chose it
STUDY = "mlbench.study"
TRIAL_NUMBER = "mlbench.trial_number"

STAGES = ("train", "prune", "sweep", "tune", "trial", "report")

# -- run names ----------------------------------------------------------------------
TUNED_SUFFIX = "-tuned"


def prune_run_name(strategy: str, compression: float, seed: int, *, tuned: bool = False,
                   schedule: str = "oneshot") -> str:
    """``layer_grad-c8-s0`` (``...-tuned`` for a tuned configuration): a prune run's name.

    A pruning schedule other than one-shot follows the strategy:
    ``global_weight-iterative-c8-s0``.

    Example:
        >>> prune_run_name("global_weight", 8.0, 0, tuned=True)
        'global_weight-c8-s0-tuned'
    """
    kind = strategy if schedule == "oneshot" else f"{strategy}-{schedule}"
    return f"{kind}-c{compression:g}-s{seed}" + (TUNED_SUFFIX if tuned else "")


# -- strategies ---------------------------------------------------------------------
# The paper's five baselines, in its order: default grids, tables and colours keep to it.
BASELINES = ("global_weight", "layer_weight", "global_grad", "layer_grad", "random")


def strategy_rank(strategy: str) -> tuple[int, str]:
    """Sort key: the baselines in the paper's order, then other strategies by name."""
    known = strategy in BASELINES
    return (BASELINES.index(strategy) if known else len(BASELINES), strategy)


# -- metrics ------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A metric's name in MLflow, how a plot or table labels it, and its unit."""

    name: str
    label: str
    unit: str = ""


EPOCH_METRICS = ("train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5", "lr")
FINAL_METRICS = (
    "acc1", "acc5", "loss", "pre_acc1", "pre_acc5", "base_acc1", "base_acc5", "params",
    "params_nz", "compression", "macs", "macs_nz", "flops", "flops_nz", "speedup",
    "measured_speedup", "measured_speedup_throughput", "latency_ms", "base_latency_ms",
    "throughput", "base_throughput", "speed_threads", "speed_seconds", "train_epochs_total",
    # issue 19: the measured speedups' 95% intervals and whether they exclude 1
    "measured_speedup_lo", "measured_speedup_hi", "measurable_speedup",
    "measured_speedup_throughput_lo", "measured_speedup_throughput_hi",
    "measurable_speedup_throughput",
    "macs_conv_linear", "macs_conv_linear_nz", "speedup_conv_linear",
)
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("acc1", "top-1 accuracy", "fraction"),
        Metric("acc5", "top-5 accuracy", "fraction"),
        Metric("loss", "test loss", "nats"),
        Metric("pre_acc1", "top-1 after pruning, before fine-tuning", "fraction"),
        Metric("pre_acc5", "top-5 after pruning, before fine-tuning", "fraction"),
        Metric("base_acc1", "top-1 of the dense base model", "fraction"),
        Metric("base_acc5", "top-5 of the dense base model", "fraction"),
        Metric("delta_acc1", "Δ top-1 vs dense", "fraction"),
        Metric("delta_acc5", "Δ top-5 vs dense", "fraction"),
        Metric("params", "parameters", "count"),
        Metric("params_nz", "nonzero parameters", "count"),
        Metric("compression", "compression (params / nonzero params)", "ratio"),
        Metric("compression_measured", "compression (params / nonzero params)", "ratio"),
        Metric("macs", "multiply-accumulates per sample", "MACs"),
        Metric("macs_nz", "nonzero multiply-accumulates per sample", "MACs"),
        Metric("flops", "FLOPs per sample (2 x MACs)", "FLOPs"),
        Metric("flops_nz", "nonzero FLOPs per sample", "FLOPs"),
        Metric("speedup", "theoretical speedup, whole model (MACs / nonzero MACs)", "ratio"),
        Metric("macs_conv_linear", "multiply-accumulates of conv and linear layers (the "
               "paper's convention)", "MACs"),
        Metric("macs_conv_linear_nz", "nonzero multiply-accumulates of conv and linear "
               "layers", "MACs"),
        Metric("speedup_conv_linear", "theoretical speedup, conv + linear MACs (the paper's)",
               "ratio"),
        Metric("measured_speedup", "measured speedup (dense / pruned latency, batch 1)",
               "ratio"),
        Metric("measured_speedup_throughput",
               "measured speedup (pruned / dense throughput, fine-tuning batch)", "ratio"),
        Metric("measured_speedup_lo", "measured speedup, batch 1: 95% interval, low end",
               "ratio"),
        Metric("measured_speedup_hi", "measured speedup, batch 1: 95% interval, high end",
               "ratio"),
        Metric("measurable_speedup", "1 if the batch-1 interval excludes 1, else 0 (no "
               "measurable speedup)", "flag"),
        Metric("measured_speedup_throughput_lo", "measured speedup, fine-tuning batch: 95% "
               "interval, low end", "ratio"),
        Metric("measured_speedup_throughput_hi", "measured speedup, fine-tuning batch: 95% "
               "interval, high end", "ratio"),
        Metric("measurable_speedup_throughput", "1 if the batch interval excludes 1, else 0",
               "flag"),
        Metric("latency_ms", "latency of the pruned model, batch 1", "ms"),
        Metric("base_latency_ms", "latency of the dense model, batch 1", "ms"),
        Metric("throughput", "throughput of the pruned model", "samples/s"),
        Metric("base_throughput", "throughput of the dense model", "samples/s"),
        Metric("speed_threads", "CPU threads while timing", "count"),
        Metric("speed_seconds", "time spent measuring speed", "s"),
        Metric("train_epochs_total", "training epochs, base + fine-tuning", "epochs"),
        Metric("train_loss", "training loss", "nats"),
        Metric("train_acc1", "training top-1", "fraction"),
        Metric("val_loss", "val loss", "nats"),
        Metric("val_acc1", "val top-1", "fraction"),
        Metric("val_acc5", "val top-5", "fraction"),
        Metric("lr", "learning rate", ""),
    )
}


def label(metric: str) -> str:
    """How a plot axis or table header names ``metric`` (the name itself if unknown)."""
    return METRICS[metric].label if metric in METRICS else metric


__all__ = [
    "BASELINES",
    "BASE_HASH",
    "CONFIG_HASH",
    "DATA_DIGEST",
    "EPOCH_METRICS",
    "FINAL_METRICS",
    "GIT_COMMIT",
    "METRICS",
    "STAGE",
    "STAGES",
    "STUDY",
    "TRIAL_NUMBER",
    "TUNED",
    "TUNED_SUFFIX",
    "TUNE_RUN_ID",
    "VERSION",
    "Metric",
    "label",
    "prune_run_name",
    "strategy_rank",
]
