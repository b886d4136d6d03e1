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
CALIB_SEED_MARK = "-cal"  # a calibration seed but the default: wanda-c2-s0-cal1


def prune_run_name(strategy: str, compression: float, seed: int, *, tuned: bool = False,
                   schedule_mark: str = "", calib_seed: int | None = None) -> str:
    """``layer_grad-c8-s0`` (``...-tuned`` for a tuned configuration): a prune run's name.

    ``schedule_mark`` (the schedule's ``Schedule.mark``: empty for one-shot, else its
    name) follows the strategy: ``global_weight-iterative-c8-s0``. A calibration seed
    (``calib_seed``, which callers give only when it is not the default) follows the
    seed, so that cells that differ only in their calibration draw never share a name:
    ``wanda-c2-s0-cal1``.

    Example:
        >>> prune_run_name("global_weight", 8.0, 0, tuned=True)
        'global_weight-c8-s0-tuned'
        >>> prune_run_name("global_weight", 8.0, 0, schedule_mark="iterative")
        'global_weight-iterative-c8-s0'
        >>> prune_run_name("wanda", 2.0, 0, calib_seed=1)
        'wanda-c2-s0-cal1'
    """
    kind = f"{strategy}-{schedule_mark}" if schedule_mark else strategy
    calib = "" if calib_seed is None else f"{CALIB_SEED_MARK}{calib_seed}"
    return f"{kind}-c{compression:g}-s{seed}{calib}" + (TUNED_SUFFIX if tuned else "")


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
    """A metric declared once: its name in MLflow, label, unit, and where it appears.

    Every list of metric names (the final metrics a prune run logs, the per-epoch curves,
    the CLI's result line, the report's columns and summary, the timing measurements) is
    derived from these declarations, so adding a metric is one line here.
    """

    name: str
    label: str
    unit: str = ""
    final: bool = False  # logged once by every prune run, at its end
    epoch: bool = False  # logged per epoch (step = epoch)
    timing: bool = False  # a measurement of this machine now, not a result of the run
    report: bool = False  # computed by the report from other metrics, never logged
    shown: int = 0  # position in the CLI's result line after a prune run (0: not shown)
    summary: int = 0  # position in the report's summary table (0: not in it)
    column: str = ""  # the report frame's column, if not ``name``

    @property
    def frame_column(self) -> str:
        """The column of the report's runs frame holding this metric."""
        return self.column or self.name


_DECLARED = (
    Metric("acc1", "top-1 accuracy", "fraction", final=True, shown=3, summary=1),
    Metric("acc5", "top-5 accuracy", "fraction", final=True, shown=4, summary=2),
    Metric("delta_acc1", "Δ top-1 vs dense", "fraction", report=True, summary=3),
    Metric("delta_acc5", "Δ top-5 vs dense", "fraction", report=True, summary=4),
    Metric("loss", "test loss", "nats", final=True),
    Metric("pre_acc1", "top-1 after pruning, before fine-tuning", "fraction", final=True,
           shown=2, summary=5),
    Metric("pre_acc5", "top-5 after pruning, before fine-tuning", "fraction", final=True),
    Metric("base_acc1", "top-1 of the dense base model", "fraction", final=True, shown=1,
           summary=6),
    Metric("base_acc5", "top-5 of the dense base model", "fraction", final=True),
    Metric("params", "parameters", "count", final=True),
    Metric("params_nz", "nonzero parameters", "count", final=True, shown=7, summary=10),
    # the measured ratio; the report calls it compression_measured beside the target
    Metric("compression", "compression (params / nonzero params)", "ratio", final=True,
           shown=5, summary=7, column="compression_measured"),
    Metric("macs", "multiply-accumulates per sample", "MACs", final=True),
    Metric("macs_nz", "nonzero multiply-accumulates per sample", "MACs", final=True),
    Metric("flops", "FLOPs per sample (2 x MACs)", "FLOPs", final=True),
    Metric("flops_nz", "nonzero FLOPs per sample", "FLOPs", final=True),
    Metric("speedup", "theoretical speedup, whole model (MACs / nonzero MACs)", "ratio",
           final=True, shown=6, summary=8),
    Metric("macs_conv_linear", "multiply-accumulates of conv and linear layers (the "
           "paper's convention)", "MACs", final=True),
    Metric("macs_conv_linear_nz", "nonzero multiply-accumulates of conv and linear layers",
           "MACs", final=True),
    Metric("speedup_conv_linear", "theoretical speedup, conv + linear MACs (the paper's)",
           "ratio", final=True, summary=9),
    Metric("measured_speedup", "measured speedup (dense / pruned latency, batch 1)", "ratio",
           final=True, timing=True),
    Metric("measured_speedup_throughput",
           "measured speedup (pruned / dense throughput, fine-tuning batch)", "ratio",
           final=True, timing=True),
    Metric("latency_ms", "latency of the pruned model, batch 1", "ms", final=True,
           timing=True),
    Metric("base_latency_ms", "latency of the dense model, batch 1", "ms", final=True,
           timing=True),
    Metric("throughput", "throughput of the pruned model", "samples/s", final=True,
           timing=True),
    Metric("base_throughput", "throughput of the dense model", "samples/s", final=True,
           timing=True),
    Metric("speed_threads", "CPU threads while timing", "count", final=True, timing=True),
    Metric("speed_seconds", "time spent measuring speed", "s", final=True, timing=True),
    # the measured speedups' 95% intervals, whether they exclude 1, and what measuring took
    Metric("measured_speedup_lo", "measured speedup, batch 1: 95% interval, low end", "ratio",
           final=True, timing=True),
    Metric("measured_speedup_hi", "measured speedup, batch 1: 95% interval, high end",
           "ratio", final=True, timing=True),
    Metric("measurable_speedup", "1 if the batch-1 interval excludes 1, else 0 (no "
           "measurable speedup)", "flag", final=True, timing=True),
    Metric("measured_speedup_throughput_lo", "measured speedup, fine-tuning batch: 95% "
           "interval, low end", "ratio", final=True, timing=True),
    Metric("measured_speedup_throughput_hi", "measured speedup, fine-tuning batch: 95% "
           "interval, high end", "ratio", final=True, timing=True),
    Metric("measurable_speedup_throughput", "1 if the batch interval excludes 1, else 0",
           "flag", final=True, timing=True),
    Metric("speed_budget_seconds", "most time measuring speed may take (a share of the run)",
           "s", final=True, timing=True),
    Metric("speed_pairs", "interleaved (dense, pruned) timing pairs, batch 1", "count",
           final=True, timing=True),
    Metric("speed_pairs_throughput", "interleaved timing pairs, fine-tuning batch", "count",
           final=True, timing=True),
    Metric("speed_calls", "forward calls per timing sample, batch 1", "count", final=True,
           timing=True),
    Metric("speed_calls_throughput", "forward calls per timing sample, fine-tuning batch",
           "count", final=True, timing=True),
    Metric("train_epochs_total", "training epochs, base + fine-tuning", "epochs", final=True),
    Metric("train_loss", "training loss", "nats", epoch=True),
    Metric("train_acc1", "training top-1", "fraction", epoch=True),
    Metric("val_loss", "val loss", "nats", epoch=True),
    Metric("val_acc1", "val top-1", "fraction", epoch=True),
    Metric("val_acc5", "val top-5", "fraction", epoch=True),
    Metric("lr", "learning rate", "", epoch=True),
)
METRICS: dict[str, Metric] = {m.name: m for m in _DECLARED}
if len(METRICS) != len(_DECLARED):  # a metric declared twice is a mistake, not an override
    raise RuntimeError("a metric is declared twice in mlbench/names.py")

# Every list below is derived from the declarations above (issue 17, point 5).
EPOCH_METRICS = tuple(m.name for m in _DECLARED if m.epoch)
FINAL_METRICS = tuple(m.name for m in _DECLARED if m.final)
TIMING_METRICS = tuple(m.name for m in _DECLARED if m.timing)
# the CLI's one-line result of a prune run, in its order
SHOWN_METRICS = tuple(m.name for m in sorted((m for m in _DECLARED if m.shown),
                                             key=lambda m: m.shown))
# the report's frame: the metric columns that lead it (results, not timings), in order
REPORT_COLUMNS = tuple(m.frame_column for m in _DECLARED
                       if (m.final or m.report) and not m.timing)
# the report's summary table (mean and std over seeds), in its order
SUMMARY_METRICS = tuple(m.frame_column for m in sorted((m for m in _DECLARED if m.summary),
                                                       key=lambda m: m.summary))
_BY_COLUMN = {m.frame_column: m for m in _DECLARED}


def label(metric: str) -> str:
    """How a plot axis or table header names ``metric`` (the name itself if unknown)."""
    found = METRICS.get(metric) or _BY_COLUMN.get(metric)
    return found.label if found else metric


__all__ = [
    "BASELINES",
    "BASE_HASH",
    "CALIB_SEED_MARK",
    "CONFIG_HASH",
    "DATA_DIGEST",
    "EPOCH_METRICS",
    "FINAL_METRICS",
    "GIT_COMMIT",
    "METRICS",
    "REPORT_COLUMNS",
    "SHOWN_METRICS",
    "STAGE",
    "STAGES",
    "STUDY",
    "SUMMARY_METRICS",
    "TIMING_METRICS",
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
