"""The budget: exactly ``trials`` finished trials per study, however many workers run it.

A trial counts once, whether it COMPLETEs or is PRUNED (its unspent epochs are not given
back, so no strategy buys extra trials by being pruned more); ``epochs_spent`` shows the
compute each study really used. A FAILed trial counts nothing: a worker that died is
detected by its missing heartbeat, its trial failed and re-queued with the same
parameters, so the budget it held is given back.

Workers coordinate through the storage alone. Before each trial a worker counts the
trials that hold budget (COMPLETE, PRUNED, RUNNING, WAITING). Two workers may both see
the last free slot; the trial whose number ranks beyond the budget among the trials
holding budget is the surplus one: it is failed at once, before it samples anything,
and marked ``surplus``. Workers whose study is full but not finished wait for the
running trials (which may still die and come back).
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

SURPLUS = "surplus"  # trial user attribute: created beyond the budget, failed unrun
_HOLDING = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class _Surplus(Exception):  # noqa: N818 - a signal, caught by study.optimize
    """This trial was created after the budget was already taken."""


def run_budget(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    trials: int,
    *,
    poll_s: float = 1.0,
    after_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> None:
    """Run trials of ``study`` until ``trials`` of them are COMPLETE or PRUNED.

    Safe to run in many processes against one storage, and to start again after a
    kill: it finishes the study rather than restarting it.
    """

    def gated(trial: optuna.Trial) -> float:
        holding = sorted(t.number for t in study.get_trials(deepcopy=False, states=_HOLDING))
        if trial.number in holding and holding.index(trial.number) >= trials:
            trial.set_user_attr(SURPLUS, True)
            raise _Surplus(f"budget of {trials} trials already taken")
        return objective(trial)

    callbacks = [after_trial] if after_trial else None
    while True:
        counts = _counts(study)
        done = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if done >= trials:
            return
        held = done + counts[TrialState.RUNNING] + counts[TrialState.WAITING]
        if held < trials or counts[TrialState.WAITING]:
            study.optimize(gated, n_trials=1, catch=(_Surplus,), callbacks=callbacks)
        else:  # every slot is taken by a running trial: wait (its worker may die)
            time.sleep(poll_s)


def _counts(study: optuna.Study) -> Counter:
    """Trial states, after failing (and re-queueing) the trials of dead workers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return Counter(t.state for t in study.get_trials(deepcopy=False))
