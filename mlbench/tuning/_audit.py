"""The audit table of a study: what its budget bought, so "equal budget" can be checked."""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import TrialState

from mlbench.tuning._budget import SURPLUS
from mlbench.tuning._objective import EPOCHS_SPENT

COLUMNS = (
    "strategy", "study", "trials_budget", "trials_complete", "trials_pruned", "trials_failed",
    "epochs_spent", "epochs_cap", "best_val_acc1", "best_trial", "best_params",
    "search_space_hash", "sampler", "pruner",
)


def summarize(study: optuna.Study, trials: int, epochs_cap: int, space_hash: str) -> dict[str, Any]:
    """One row of the audit table for ``study`` (columns: ``COLUMNS``).

    ``epochs_spent`` sums the fine-tuning epochs of the trials in the budget (COMPLETE
    and PRUNED); ``trials_failed`` counts trials of dead workers (redone, not charged)
    and of errors, never the surplus trials a race created and failed unrun.
    """
    all_trials = study.get_trials(deepcopy=False)
    states = [t.state for t in all_trials]
    charged = [t for t in all_trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed = [t for t in all_trials if t.state == TrialState.FAIL and not t.user_attrs.get(SURPLUS)]
    complete = [t for t in all_trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    return {
        "strategy": study.user_attrs.get("strategy", ""),
        "study": study.study_name,
        "trials_budget": trials,
        "trials_complete": states.count(TrialState.COMPLETE),
        "trials_pruned": states.count(TrialState.PRUNED),
        "trials_failed": len(failed),
        "epochs_spent": sum(int(t.user_attrs.get(EPOCHS_SPENT, 0)) for t in charged),
        "epochs_cap": epochs_cap,
        "best_val_acc1": best.value if best else float("nan"),
        "best_trial": best.number if best else -1,
        "best_params": json.dumps(best.params if best else {}, sort_keys=True),
        "search_space_hash": space_hash,
        "sampler": str(study.sampler),
        "pruner": type(study.pruner).__name__,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned text (what ``mlbench tune`` prints at the end)."""
    keys = ("strategy", "trials_complete", "trials_pruned", "trials_failed", "epochs_spent",
            "best_val_acc1", "best_params")
    cells = [[str(k) for k in keys]] + [[_cell(r[k]) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)),
                                row[-1]]) for row in cells)


def _cell(value: Any) -> str:  # noqa: ANN401 - any table value
    return f"{value:.4f}" if isinstance(value, float) else str(value)
