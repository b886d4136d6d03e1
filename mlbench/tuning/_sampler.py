"""The sampler and the pruner: identical, and identically seeded, for every strategy.

``TrialSeededTPE`` is Optuna's TPE whose randomness for trial ``k`` comes from
``(seed, k)`` alone. Run serially, every strategy's study therefore starts with the very
same random start-up configurations; run by many workers, the workers do not all
propose the same point (as a plainly seeded TPE in each worker would).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from mlbench.config import config_hash


def startup_trials(trials: int) -> int:
    """Random start-up trials before TPE models the results: a third of the budget, 1..10."""
    return min(10, max(1, trials // 3))


class TrialSeededTPE(BaseSampler):
    """TPE whose random state for trial ``k`` is seeded by ``(seed, k)``.

    Example:
        >>> sampler = TrialSeededTPE(seed=0, n_startup_trials=4)
    """

    def __init__(self, seed: int, n_startup_trials: int) -> None:
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self._samplers: OrderedDict[int, TPESampler] = OrderedDict()

    def __str__(self) -> str:
        return f"TrialSeededTPE(seed={self.seed}, n_startup_trials={self.n_startup_trials})"

    def _for(self, trial: FrozenTrial) -> TPESampler:
        number = trial.number
        if number not in self._samplers:
            seed = int(config_hash({"seed": self.seed, "trial": number})[:8], 16)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._samplers[number] = TPESampler(seed=seed,
                                                    n_startup_trials=self.n_startup_trials)
            while len(self._samplers) > 4:  # a worker runs one trial at a time
                self._samplers.popitem(last=False)
        return self._samplers[number]

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """TPE's, for this trial."""
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """TPE's, for this trial."""
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:  # noqa: ANN401 - a parameter value of any type
        """TPE's, for this trial."""
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """TPE's, for this trial."""
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        """TPE's, for this trial."""
        self._for(trial).after_trial(study, trial, state, values)


def make_pruner(trials: int) -> optuna.pruners.BasePruner:
    """Median pruning on the per-epoch val acc1, once a few trials have finished.

    A trial stops after an epoch whose val acc1 is below the median of earlier trials'
    at that epoch; the first quarter of the budget (1..5 trials) is never pruned.
    """
    return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, trials // 4)),
                                       n_warmup_steps=0)
