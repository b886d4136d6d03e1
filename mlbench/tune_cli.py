"""``python -m mlbench tune``: its options and handler (wired into mlbench/cli.py).

Options have the MLproject ``tune`` entry point's parameter names. An empty value (the
MLproject's default for ``strategies``, ``seeds``, ``storage``, ``dataset``, ``model``)
means "not given": the preset's value, or the default.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlbench.cli import _add_common, _add_fields, _parse_int, _quiet_mlflow, _split
from mlbench.config import BASE_DEFAULTS, FINETUNE_DEFAULTS, OptimConfig, PruneConfig

_TUNE_KEYS = ("project", "strategies", "trials", "storage", "study_prefix", "seeds")


def add_tune_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add the ``tune`` subcommand to ``sub`` (the subparsers of ``build_parser``)."""
    tune = sub.add_parser(
        "tune", help="tune fine-tuning per strategy with Optuna, then test the best configs",
        description="One Optuna study per strategy over the preset's search space (the same "
        "space, budget, sampler and seed for every strategy), scored on val acc1 only; then "
        "each strategy's best config runs on the test split for every seed, tagged "
        "mlbench.tuned. Started again with the same arguments, it resumes the studies.")
    study = tune.add_argument_group("tuning")
    study.add_argument("--project", default=None, metavar="YAML",
                       help="a preset from projects/ holding the search_space (and recipe)")
    study.add_argument("--strategies", default=None, metavar="LIST",
                       help="comma-separated strategies, one study each (default: the five "
                       "baselines)")
    study.add_argument("--trials", type=_parse_int, default=None, metavar="INT",
                       help="the budget: finished trials per strategy, pruned ones included "
                       "(default: 20)")
    study.add_argument("--storage", default=None, metavar="URL",
                       help="Optuna storage: sqlite:///PATH, postgresql://..., or journal:PATH "
                       "for many workers (default: sqlite:///$PWD/optuna.db)")
    study.add_argument("--study-prefix", default=None, metavar="NAME",
                       help="first part of every study name (default: mlbench)")
    study.add_argument("--seeds", default=None, metavar="LIST",
                       help="seeds of the tuned runs on the test split (default: the preset's, "
                       "else 0,1,2)")
    _add_common(tune)
    _add_fields(tune.add_argument_group("pruning"), PruneConfig, PruneConfig(),
                skip=("strategy",))
    _add_fields(tune.add_argument_group("fine-tuning (options outside the search space)"),
                OptimConfig, FINETUNE_DEFAULTS)
    _add_fields(tune.add_argument_group("base model training"), OptimConfig, BASE_DEFAULTS,
                "base_", "base_")
    tune.set_defaults(func=_tune)


def _tune(args: argparse.Namespace) -> int:
    from mlbench.presets import EXTRA_KEYS, SEARCH_SPACE, load_preset
    from mlbench.search_space import default_search_space, parse_search_space
    from mlbench.sweep import parse_list
    from mlbench.tuning import DEFAULT_SEEDS, DEFAULT_TRIALS, TuneConfig, format_table, run_tune

    _quiet_mlflow()
    given = {k: v for k, v in vars(args).items() if v != ""}  # "" is MLproject's "not given"
    options = {k: given.pop(k, None) for k in _TUNE_KEYS}
    preset = load_preset(options["project"]) if options["project"] else {}
    merged: dict[str, Any] = {k: v for k, v in preset.items() if k not in EXTRA_KEYS}
    cfg, tracking = _split(argparse.Namespace(**{**merged, **given}))
    space = (parse_search_space(preset[SEARCH_SPACE], f"{options['project']}: search_space")
             if SEARCH_SPACE in preset else default_search_space(cfg.finetune))
    defaults = TuneConfig(space=space)
    tune = TuneConfig(
        space=space,
        strategies=parse_list(options["strategies"] or preset.get("strategies")
                              or defaults.strategies, str, "--strategies"),
        trials=DEFAULT_TRIALS if options["trials"] is None else options["trials"],
        storage=options["storage"] or "",
        study_prefix=options["study_prefix"] or defaults.study_prefix,
        seeds=parse_list(options["seeds"] or preset.get("seeds") or DEFAULT_SEEDS, int,
                         "--seeds"),
    )
    rows = run_tune(cfg, tune, tracking)
    print(format_table(rows))
    return 0
