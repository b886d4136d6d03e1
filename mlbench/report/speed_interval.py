"""How a measured speedup's 95% interval is drawn (issue 19).

A point whose interval includes 1 is "no measurable speedup": drawn hollow, its
interval as an error bar like every other, so a reader never takes noise around 1 for a
speedup or a slowdown.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

NO_SPEEDUP_LABEL = "hollow: no measurable speedup (95% interval includes 1)"


def no_measurable_speedup(runs: pd.DataFrame, column: str = "measured_speedup") -> pd.Series:
    """True for each run whose interval of ``column`` includes 1 (or was not logged)."""
    lo, hi = runs.get(f"{column}_lo"), runs.get(f"{column}_hi")
    if lo is None or hi is None:
        return pd.Series(True, index=runs.index)
    return ~((lo > 1) | (hi < 1))


def draw_measured(ax: Axes, part: pd.DataFrame, x: str, y: str, colour: str, marker: str,
                  label: str) -> None:
    """Scatter ``x`` against ``y``: the measured-speedup axis with its interval as error bars,
    points with no measurable speedup hollow."""
    column = "measured_speedup"
    none = no_measurable_speedup(part, column)
    for hollow, rows in ((False, part[~none]), (True, part[none])):
        if not len(rows):
            continue
        ax.scatter(rows[x], rows[y], s=28, marker=marker, label=label if not hollow or
                   not (~none).any() else None,
                   facecolors="none" if hollow else colour, edgecolors=colour)
    if f"{column}_lo" in part and part[f"{column}_lo"].notna().any():
        err = [part[column] - part[f"{column}_lo"], part[f"{column}_hi"] - part[column]]
        kw = {"xerr": err} if x == column else {"yerr": err}
        ax.errorbar(part[x], part[y], fmt="none", ecolor=colour, elinewidth=0.8, alpha=0.7,
                    **kw)


__all__ = ["NO_SPEEDUP_LABEL", "draw_measured", "no_measurable_speedup"]
