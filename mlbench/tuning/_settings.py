"""What a tuning command asks for, validated before anything is created."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlbench.config import RunConfig, config_hash
from mlbench.errors import ConfigError
from mlbench.grid import DEFAULT_SEEDS
from mlbench.names import BASELINES
from mlbench.options import TuneOptions
from mlbench.search_space import SearchSpace

DEFAULT_TRIALS = TuneOptions().trials  # one definition: the option schema


@dataclass(frozen=True)
class TuneConfig:
    """One study per strategy, each with the same space, budget, sampler and seed."""

    space: SearchSpace
    strategies: tuple[str, ...] = BASELINES  # the paper's five
    trials: int = DEFAULT_TRIALS  # the budget: finished (complete or pruned) trials per study
    storage: str = ""  # --storage; empty: sqlite:///$PWD/optuna.db
    study_prefix: str = TuneOptions().study_prefix
    seeds: tuple[int, ...] = DEFAULT_SEEDS  # seeds of the tuned runs on the test split

    def check(self) -> None:
        """A budget of at least one trial, seeds, a usable prefix, no strategy twice.

        Each strategy's name, and whether its kind can run the model, target and
        schedule, is checked by the kind (``recipe.prepare``) before any work.
        """
        if not self.strategies:
            raise ConfigError("--strategies must name at least one strategy")
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"--strategies names one twice: {','.join(self.strategies)}")
        if not isinstance(self.trials, int) or self.trials < 1:
            raise ConfigError(f"--trials must be an integer >= 1, got {self.trials!r}")
        if not self.seeds or min(self.seeds) < 0:
            raise ConfigError(f"--seeds must name seeds >= 0, got {list(self.seeds)}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.study_prefix):
            raise ConfigError(
                "--study-prefix must be letters, digits, '_', '.' or '-', "
                f"got {self.study_prefix!r}"
            )

    def study_name(self, cfg: RunConfig) -> str:
        """``<prefix>-<dataset>-<model>-<strategy>-c<compression>-s<seed>-<hash>``.

        The hash covers everything the objective depends on (the config without the
        searched options, and the search space), so a changed setup never resumes an
        old study; the budget is not in it, so a study can be extended.
        """
        key = {k: v for k, v in cfg.run_key().items() if k not in self.space.names()}
        digest = config_hash({**key, "search_space": self.space.as_dict()})[:8]
        return (f"{self.study_prefix}-{cfg.data.dataset}-{cfg.model}-{cfg.prune.strategy}"
                f"-c{cfg.prune.compression:g}-s{cfg.seed}-{digest}")
