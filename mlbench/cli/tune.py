"""``python -m mlbench tune``: one fair Optuna study per strategy, then the best on test."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from mlbench.cli._args import add_command, quiet_mlflow, split, unset_empty, values
from mlbench.cli._checks import check_names
from mlbench.config import RunConfig, TrackingConfig, check
from mlbench.errors import ConfigError
from mlbench.grid import DEFAULT_SEEDS, Grid, parse_list
from mlbench.names import BASELINES
from mlbench.options import TuneOptions, keys_of
from mlbench.presets import EXTRA_KEYS, SEARCH_SPACE, load_preset

_OWN = keys_of(TuneOptions)  # tune's own options; the rest make the RunConfig


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``tune`` to the subparsers of ``build_parser``."""
    add_command(
        sub, "tune", run,
        help="tune fine-tuning per strategy with Optuna, then test the best configs",
        description="One Optuna study per strategy over the preset's search space (the same "
        "space, budget, sampler and seed for every strategy), scored on val acc1 only; then "
        "each strategy's best config runs on the test split for every seed, tagged "
        "mlbench.tuned. Started again with the same arguments, it resumes the studies. An "
        "empty option value means \"not given\": the preset's, else the default.",
        empty_means_unset=True)


@dataclass(frozen=True)
class TuneSettings:
    """What ``tune`` was asked, resolved: its own options, the studies, the recipe."""

    own: TuneOptions
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    cfg: RunConfig
    tracking: TrackingConfig
    space: Any  # mlbench.search_space.SearchSpace
    given: frozenset[str] = frozenset()  # the own options given (not defaults)

    def flat(self) -> dict[str, Any]:
        """Every option's value as ``tune`` uses it (lists parsed)."""
        return {**dataclasses.asdict(self.own), **self.cfg.flat(),
                **dataclasses.asdict(self.tracking), "strategies": self.strategies,
                "seeds": self.seeds}


def resolve(args: argparse.Namespace) -> TuneSettings:
    """The options, the preset under them and the search space, checked."""
    from mlbench.search_space import default_search_space, parse_search_space

    given = unset_empty(values(args))
    own = {k: given.pop(k) for k in _OWN if k in given}
    opts = TuneOptions(**own)
    check(opts)
    project = own.get("project")
    preset = load_preset(project) if project else {}
    cfg, tracking = split({**{k: v for k, v in preset.items() if k not in EXTRA_KEYS},
                           **given})
    strategies = parse_list(own.get("strategies") or preset.get("strategies") or BASELINES,
                            str, "--strategies")
    seeds = parse_list(own.get("seeds") or preset.get("seeds") or DEFAULT_SEEDS, int,
                       "--seeds")
    check_names(cfg, strategies)
    Grid(strategies=strategies, seeds=seeds).check()  # the same bounds as a sweep's
    _check_tunable(cfg)
    space = (parse_search_space(preset[SEARCH_SPACE], f"{project}: search_space")
             if SEARCH_SPACE in preset else default_search_space(cfg.finetune))
    return TuneSettings(opts, strategies, seeds, cfg, tracking, space, frozenset(own))


def _check_tunable(cfg: RunConfig) -> None:
    """What tuning does not do yet, refused in one line rather than tuned as something else.

    A trial fine-tunes the base weights it is given; it has no base run to read a rewind
    snapshot from, and ``--prune-at init`` trains with the base recipe, which the search
    space (the fine-tuning recipe's) does not reach.
    """
    if cfg.prune.rewind in ("weights", "lr"):
        raise ConfigError(f"tune: --rewind {cfg.prune.rewind} replays the base training, "
                          "which trials cannot; tune with --rewind finetune or dense_weights")
    if cfg.prune.prune_at == "init":
        raise ConfigError("tune: --prune-at init trains with the base recipe, outside the "
                          "search space; tune pruning after training (--prune-at trained)")


def run(args: argparse.Namespace) -> int:
    """Check everything, tune, print the audit table."""
    settings = resolve(args)
    own, space = settings.own, settings.space
    from mlbench.tuning import TuneConfig, format_table, run_tune

    quiet_mlflow()
    tune = TuneConfig(
        space=space, strategies=settings.strategies, seeds=settings.seeds,
        trials=own.trials,
        storage=own.storage,
        study_prefix=own.study_prefix or TuneConfig(space=space).study_prefix,
    )
    rows = run_tune(settings.cfg, tune, settings.tracking)
    print(format_table(rows))
    return 0
