"""``python -m mlbench tune``: one fair Optuna study per strategy, then the best on test."""

from __future__ import annotations

import argparse
from typing import Any

from mlbench.cli._args import add_command, quiet_mlflow, split, unset_empty, values
from mlbench.cli._checks import check_names
from mlbench.config import check
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


def run(args: argparse.Namespace) -> int:
    """Check everything, tune, print the audit table."""
    from mlbench.search_space import default_search_space, parse_search_space

    given = unset_empty(values(args))
    own = {k: given.pop(k) for k in _OWN if k in given}
    check(TuneOptions(**own))
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
    space = (parse_search_space(preset[SEARCH_SPACE], f"{project}: search_space")
             if SEARCH_SPACE in preset else default_search_space(cfg.finetune))
    from mlbench.tuning import DEFAULT_TRIALS, TuneConfig, format_table, run_tune

    quiet_mlflow()
    tune = TuneConfig(
        space=space, strategies=strategies, seeds=seeds,
        trials=own.get("trials", DEFAULT_TRIALS),
        storage=own.get("storage", ""),
        study_prefix=own.get("study_prefix") or TuneConfig(space=space).study_prefix,
    )
    rows = run_tune(cfg, tune, tracking)
    print(format_table(rows))
    return 0
