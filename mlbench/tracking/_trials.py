"""MLflow side of tuning: ``tune`` runs, nested ``trial`` runs, and tuned ``prune`` runs.

A small wrapper of our own (optuna-integration's MLflowCallback is deprecated): the
tuner opens one ``tune`` run per study, a nested ``trial`` run per Optuna trial, and
then runs the best configuration on the test split as ordinary ``prune`` runs tagged
``mlbench.tuned = "true"`` and ``mlbench.tune_run_id``. Untuned prune runs lack the tag.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow

from mlbench.config import config_hash
from mlbench.names import STUDY, TRIAL_NUMBER, TUNE_RUN_ID, TUNED, TUNED_SUFFIX
from mlbench.tracking._tracker import CONFIG_HASH, Tracker

STORAGE = "mlbench.storage"  # tune runs: the Optuna storage (password hidden)
SEARCH_SPACE_HASH = "mlbench.search_space_hash"
TRIAL_STATE = "mlbench.trial_state"  # COMPLETE or PRUNED (a pruned trial's run FINISHES)


class TrialLog:
    """What an objective logs to its ``trial`` run: per-epoch curves and its outcome."""

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id

    def epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """One epoch's metrics (train/val loss and accuracy, lr) at step ``epoch``."""
        self.tracker.log_metrics(metrics, step=epoch, wait=False)

    def finish(self, state: str, value: float, epochs_spent: int) -> None:
        """The trial's state (COMPLETE or PRUNED), objective value and epochs run."""
        mlflow.set_tag(TRIAL_STATE, state)
        self.tracker.log_metrics({"objective_val_acc1": value, "epochs_spent": epochs_spent})


@contextlib.contextmanager
def trial_run(
    tracker: Tracker, study: str, number: int, name: str, params: Mapping[str, Any]
) -> Iterator[TrialLog]:
    """A ``trial`` run (nested under the active ``tune`` run, if any) for Optuna trial
    ``number`` of ``study``, with the trial's sampled ``params`` logged as params."""
    tags = {STUDY: study, TRIAL_NUMBER: str(number)}
    with tracker.run("trial", name, tags) as run_id:
        tracker.log_params({**params, "trial_number": number})
        yield TrialLog(tracker, run_id)


def tune_run(
    tracker: Tracker, study: str, storage: str, space_hash: str
) -> contextlib.AbstractContextManager[str]:
    """The ``tune`` run of ``study``: reopened when the study is resumed, and joined by
    every worker of the study (the earliest run wins when several start at once)."""
    tags = {
        CONFIG_HASH: config_hash({"study": study, "storage": storage}),
        STUDY: study,
        STORAGE: storage,
        SEARCH_SPACE_HASH: space_hash,
    }
    return tracker.run("tune", study, tags, resume=True)


def tuned_hash(run_hash: str, study: str) -> str:
    """The config hash of a tuned prune run: its config's, told apart by its study."""
    return config_hash({"run": run_hash, "tuned_by": study})


class TunedTracker(Tracker):
    """A Tracker whose ``prune`` runs are marked tuned by ``tune_run_id`` of ``study``.

    Their config hash is the tuned one (``tuned_hash``), so a sweep never mistakes a
    tuned run for the untuned cell with equal hyperparameters, and the tuner finds its
    own finished runs again when it resumes.
    """

    def __init__(self, tracker: Tracker, tune_run_id: str, study: str) -> None:
        super().__init__(tracker.cfg)
        self.tune_run_id = tune_run_id
        self.study = study

    @contextlib.contextmanager
    def run(
        self, stage: str, name: str, tags: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Iterator[str]:
        """Tracker.run, adding the tuned tags to ``prune`` runs and ``-tuned`` to their
        names (``global_weight-c8-s0-tuned``), so they never share a name with a cell."""
        tags = dict(tags or {})
        if stage == "prune":
            name = name if name.endswith(TUNED_SUFFIX) else name + TUNED_SUFFIX
            tags[CONFIG_HASH] = tuned_hash(tags[CONFIG_HASH], self.study)
            tags[TUNED] = "true"
            tags[TUNE_RUN_ID] = self.tune_run_id
        with super().run(stage, name, tags, **kwargs) as run_id:
            yield run_id
