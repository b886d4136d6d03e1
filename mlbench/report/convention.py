"""One speedup convention per question, named, never switched silently (issue 19).

Plots and claims put runs on the paper's convention, ``speedup_conv_linear`` (MACs of
the prunable conv and linear layers only, as ShrinkBench counts them). Runs that did
not log it (made before every run did) are left out of that question and named in a
warning on stderr; only when no run of the question has it does the question fall back
to the whole-model ``speedup``, and the warning says so.
"""

from __future__ import annotations

import sys

import pandas as pd

PAPER = "speedup_conv_linear"  # the paper's and ShrinkBench's convention: the default
WHOLE_MODEL = "speedup"
NAMED = 5  # run ids a warning lists before "and N more"


def speedup_column(runs: pd.DataFrame, question: str) -> str:
    """The speedup column ``question`` (a figure or claim, for the warning) uses on ``runs``.

    Returns ``speedup_conv_linear``, warning on stderr with the ids of the runs that
    lack it (they are left out of the question), or ``speedup`` with a warning when none
    has it. Callers drop the rows where the returned column is NaN.
    """
    have = runs[PAPER].notna() if PAPER in runs else pd.Series(False, index=runs.index)
    if have.all():
        return PAPER
    missing = runs.loc[~have, "run_id"] if "run_id" in runs else runs.index[~have].to_series()
    names = ", ".join(map(str, list(missing)[:NAMED]))
    more = f" and {len(missing) - NAMED} more" if len(missing) > NAMED else ""
    if not have.any():
        _warn(f"{question}: no run logged {PAPER} (the paper's convention); using the whole "
              f"model's {WHOLE_MODEL} for all {len(runs)} runs")
        return WHOLE_MODEL
    _warn(f"{question}: {len(missing)} run(s) without {PAPER} (the paper's convention) "
          f"left out: {names}{more}")
    return PAPER


_SAID: set[str] = set()  # each warning once a process: six claims ask the same question


def _warn(text: str) -> None:
    if text not in _SAID:
        _SAID.add(text)
        print(f"mlbench: warning: {text}", file=sys.stderr, flush=True)


__all__ = ["PAPER", "WHOLE_MODEL", "speedup_column"]
