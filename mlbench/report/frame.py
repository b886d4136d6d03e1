"""Runs as one tidy DataFrame (one row per prune run), and the honest cut of it.

Columns (DESIGN.md's names): ``run_id``, ``run_name``, ``experiment``, ``status``,
``start_time``; the keys ``dataset``, ``model``, ``strategy``, ``compression`` (the
*target*, the param), ``seed``, ``tuned``, ``tune_run_id``; the final metrics ``acc1``,
``acc5``, ``loss``, ``pre_acc1``, ``pre_acc5``, ``base_acc1``, ``base_acc5``, ``params``,
``params_nz``, ``compression_measured`` (the metric ``compression``), ``macs``,
``macs_nz``, ``flops``, ``flops_nz``, ``speedup`` (whole model), ``macs_conv_linear``,
``macs_conv_linear_nz``, ``speedup_conv_linear`` (the paper's convention; NaN for runs
made before mlbench logged it); ``delta_acc1`` / ``delta_acc5``
(acc minus the base model's); every other param (``epochs``, ``lr``, ...,
``base_run_id``) typed as in the config; ``base_model`` (``name/version`` from the Model
Registry); ``config_hash``; and the grouping keys below.

Grouping keys, so that runs made differently are never averaged together:

- ``recipe``: a hash of every param that determines a run's numbers except strategy,
  compression and seed. Two runs with the same (strategy, compression, recipe) differ
  only by seed.
- ``setting``: the same without the fine-tuning hyperparameters (the ones a tuner picks).
- ``group``: what a panel of the report shows together. Untuned runs: their recipe
  (the fairness protocol gives every strategy the same fine-tuning). Tuned runs:
  ``tuned-<setting>`` (each strategy brings its own tuned fine-tuning).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlbench import catalog
from mlbench.config import OptimConfig, RunConfig, config_hash
from mlbench.names import (  # noqa: F401 - strategy_rank re-exported for the plots
    BASELINES,
    CONFIG_HASH,
    FINAL_METRICS,
    METRICS,
    REPORT_COLUMNS,
    TUNE_RUN_ID,
    TUNED,
    strategy_rank,
)

KEYS = ("dataset", "model", "strategy", "compression", "seed")
# The params that determine a run's numbers (paths, device and the like left out).
RESULT_KEYS = frozenset(RunConfig().run_key())
FINETUNE_FIELDS = tuple(f.name for f in dataclasses.fields(OptimConfig))
PANEL = ("dataset", "model", "group")
GROUP = (*PANEL, "strategy", "recipe", "compression")
# The paper's five baselines first, in its order: tables and colours keep to it.
STRATEGY_ORDER = BASELINES


def runs_frame(runs: list[Mapping[str, Any]], bases: list[Mapping[str, str]] = ()) -> pd.DataFrame:
    """One row per run record (see ``mlbench.tracking.RunRecords``), typed, keys first.

    Example:
        >>> df = runs_frame(records.runs, records.bases)
        >>> df.groupby(["strategy", "compression"])["acc1"].mean()
    """
    registered = {b["run_id"]: f"{b['name']}/{b['version']}" for b in bases}
    rows = [_row(run, registered) for run in runs]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=_column_order([]))
    numeric = [c for c in (METRICS[m].frame_column for m in FINAL_METRICS) if c in df]
    df[numeric] = df[numeric].apply(pd.to_numeric)  # a metric no run logged: NaN, not None
    df["start_time"] = pd.to_datetime(df["start_time"], unit="ms", utc=True)
    return df.reindex(columns=_column_order(list(df.columns))).reset_index(drop=True)


def _row(run: Mapping[str, Any], registered: Mapping[str, str]) -> dict[str, Any]:
    params, metrics, tags = run["params"], run["metrics"], run["tags"]
    row: dict[str, Any] = {k: run[k] for k in ("run_id", "run_name", "experiment", "status")}
    row["start_time"] = run["start_time"]  # ms; one to_datetime for the column (issue 21)
    row.update({k: _typed(k, v) for k, v in params.items()})
    for key in FINAL_METRICS:
        row[METRICS[key].frame_column] = metrics.get(key)
    for k in ("acc1", "acc5"):
        have = metrics.get(k) is not None and metrics.get(f"base_{k}") is not None
        row[f"delta_{k}"] = metrics[k] - metrics[f"base_{k}"] if have else None
    mark = catalog.schedule_mark(params.get("prune_schedule", _DEFAULTS["prune_schedule"]))
    if mark:  # schedules side by side: one line each, in the same panel
        row["strategy"] = f"{row['strategy']}+{mark}"
    row["strategy"] += at_init_suffix(params)  # issue 19: at init, and its sanity checks
    row["tuned"] = tags.get(TUNED, "").lower() == "true"
    row["tune_run_id"] = tags.get(TUNE_RUN_ID, "")
    row["config_hash"] = tags.get(CONFIG_HASH, "")
    base = params.get("base_run_id", "")
    row["base_model"] = registered.get(base) or params.get("base_model", "")
    row["recipe"] = _hash(params, ("strategy", "compression", "seed"))
    row["setting"] = _hash(params, ("strategy", "compression", "seed", *FINETUNE_FIELDS))
    row["group"] = f"tuned-{row['setting']}" if row["tuned"] else row["recipe"]
    return row


_DEFAULTS = RunConfig().flat()


def at_init_suffix(params: Mapping[str, str]) -> str:
    """``+init`` for a run pruned at initialization, ``+init+layer_shuffle`` (the check's
    name) for one of Frankle et al. 2021's sanity checks; empty after training."""
    if params.get("prune_at", "trained") != "init":
        return ""
    check = params.get("init_check", "none")
    return "+init" + ("" if check == "none" else f"+{check}")


def _typed(key: str, text: str) -> Any:
    """A param string back to the type of its config field (unknown keys stay text)."""
    kind = type(_DEFAULTS.get(key, ""))
    try:
        if kind is bool:
            return text.strip().lower() == "true"
        if kind in (int, float):
            value = float(text)
            return int(value) if kind is int and value == int(value) else value
    except ValueError:
        pass
    return text


def _hash(params: Mapping[str, str], leave_out: tuple[str, ...]) -> str:
    kept = {k: v for k, v in params.items() if k in RESULT_KEYS and k not in leave_out}
    return config_hash(kept)[:8] if kept else ""


_FIRST = ("run_id", "run_name", "experiment", "status", "start_time", *KEYS, "tuned",
          "tune_run_id", *REPORT_COLUMNS)  # the metrics as names.py declares them
_LAST = ("base_run_id", "base_model", "config_hash", "recipe", "setting", "group")


def _column_order(columns: list[str]) -> list[str]:
    middle = sorted(c for c in columns if c not in _FIRST and c not in _LAST)
    return [*_FIRST, *middle, *_LAST]


@dataclass
class Usable:
    """The runs a report may average, and what was left out and why."""

    runs: pd.DataFrame  # FINISHED, complete, one per config hash
    left_out: dict[str, int]  # reason -> count ("FAILED", "RUNNING", "duplicate", ...)
    recipes: dict[tuple[str, str], list[str]]  # (dataset, model) -> untuned recipes

    @property
    def total_left_out(self) -> int:
        """How many runs the report does not use."""
        return sum(self.left_out.values())


def usable_runs(df: pd.DataFrame) -> Usable:
    """Keep FINISHED runs with their final metrics, one per config hash (the latest).

    Failed, killed and unfinished runs are counted by status; a finished run without
    acc1 counts as ``incomplete``; a second finished run of the very same config (the
    same cell run twice) counts as ``duplicate``, so no seed is counted twice.
    """
    finished = df["status"] == "FINISHED"
    complete = finished & df["acc1"].notna() & df["strategy"].notna()
    left_out = Counter(df.loc[~finished, "status"])
    if (finished & ~complete).any():
        left_out["incomplete"] = int((finished & ~complete).sum())
    kept = df[complete].sort_values("start_time", ascending=False)
    key = kept["config_hash"].where(kept["config_hash"] != "", kept["run_id"])
    dup = key.duplicated()
    if dup.any():
        left_out["duplicate"] = int(dup.sum())
    kept = kept[~dup].sort_values([*GROUP, "seed"]).reset_index(drop=True)
    untuned = kept[~kept["tuned"]]
    recipes = {
        (d, m): sorted(g["recipe"].unique()) for (d, m), g in untuned.groupby(["dataset", "model"])
    }
    return Usable(kept, dict(sorted(left_out.items())), recipes)


def recipe_differences(df: pd.DataFrame, recipes: list[str]) -> dict[str, dict[str, Any]]:
    """For each recipe, the params whose values differ between the recipes given."""
    firsts = {r: df[df["recipe"] == r].iloc[0] for r in recipes}
    candidates = [c for c in df.columns if c in RESULT_KEYS and c not in KEYS]
    differing = [c for c in candidates if len({str(row[c]) for row in firsts.values()}) > 1]
    return {r: {c: row[c] for c in differing} for r, row in firsts.items()}
