"""Optuna's own plots of a study as PNG files (matplotlib: works offline, no plotly)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import optuna  # noqa: E402
from optuna.visualization import matplotlib as vis  # noqa: E402

PLOTS = {
    "optimization_history.png": vis.plot_optimization_history,
    "intermediate_values.png": vis.plot_intermediate_values,
    "param_importances.png": vis.plot_param_importances,
}


def save_plots(study: optuna.Study, folder: Path) -> dict[str, str]:
    """Write each plot of ``PLOTS`` into ``folder``; return ``{file: "ok" or why not}``.

    A plot Optuna cannot draw yet (parameter importances need two finished trials with
    differing parameters) is skipped and its reason returned.
    """
    outcome: dict[str, str] = {}
    for name, plot in PLOTS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" notices of the matplotlib backend
            try:
                axes = plot(study)
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                outcome[name] = f"skipped: {exc}"
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.tight_layout()
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
        outcome[name] = "ok"
    return outcome
