"""What every door writes the same: the experiment by default, params as one text."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

DEFAULT_EXPERIMENT = "Default"  # MLflow's own, where `mlflow run` puts its runs


def experiment_name(given: str | None) -> str:
    """``given``, else $MLFLOW_EXPERIMENT_NAME, else MLflow's ``Default``.

    ``mlflow run`` resolves its experiment the same way (``--experiment-name`` or the
    variable, else Default), so a CLI run and an ``mlflow run`` of one recipe land in one
    experiment unless the user names different ones.
    """
    return given or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def warn_differing_text(existing: Mapping[str, str], texts: Mapping[str, str]) -> None:
    """One line when ``mlflow run -P`` logged a value in a spelling other than mlbench's.

    MLflow logs ``-P`` values verbatim before mlbench starts, and a param cannot be
    changed once logged; the config hash is the same either way.
    """
    from mlbench.tracking._connect import redact  # issue 20: a password is never shown

    differing = [f"{k}={redact(existing[k])!r} (mlbench writes {texts[k]!r})"
                 for k in texts
                 if redact(existing.get(k, "''")) not in ("''", "", texts[k])]
    if differing:
        print("mlbench: `mlflow run` logged " + ", ".join(differing) + "; write -P values "
              "that way so runs from every door compare as one recipe", file=sys.stderr)
