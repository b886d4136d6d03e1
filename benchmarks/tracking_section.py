"""The suite's tracking-overhead section: runs ``tracking_overhead.py`` and reads its summary.

``tracking_overhead.py`` (owned by the tracking work, not edited here) runs a small sweep
against a real MLflow store and prints, per store it measures, a line
``all tracking <seconds> <share>%``: the seconds spent inside tracking calls and their
share of the sweep's wall time, after a line naming the run with ``wall <seconds> s``,
and ``without the queue ...``, the same without the queue's calls.
Each such summary becomes one figure: mlbench = the sweep's wall time, baseline = the
same wall time without the tracking calls, ratio = 1 - share.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from _common import Figure, Section, load1

TITLE = "Tracking overhead"
SCRIPT = Path(__file__).resolve().parent / "tracking_overhead.py"
QUICK_ARGS = ["--epochs", "1", "--base-epochs", "2"]
# summary lines: all tracking calls, and the same without the queue's calls
SUMMARY = re.compile(r"(all tracking|without the queue)\s+([\d.]+)\s+([\d.]+)%")
WALL = re.compile(r"wall ([\d.]+) s")


def parse(output: str) -> list[Figure]:
    """One figure per summary line, labelled by the last line naming a wall time."""
    figures, label, wall = [], "tracking", None
    for line in output.splitlines():
        if match := WALL.search(line):
            label, wall = line.strip(), float(match.group(1))
        elif match := SUMMARY.search(line):
            spent, share = float(match.group(2)), float(match.group(3)) / 100
            total = wall if wall is not None else spent / share
            figures.append(Figure(f"{match.group(1)}: {label}", total, total - spent,
                                  "the same sweep minus its tracking calls",
                                  target="share < 2% (ratio > 0.98)", ratio=1 - share))
    return figures


def summary_text(output: str) -> str:
    """The script's summary: its output from the first line naming a wall time on."""
    lines = output.strip().splitlines()
    first = next((i for i, line in enumerate(lines) if WALL.search(line)), 0)
    return "\n".join(lines[first:])


def section(quick: bool) -> Section:
    """Run the script (fewer epochs in quick mode) and turn its summary lines into figures."""
    before = load1()
    argv = [sys.executable, str(SCRIPT), *(QUICK_ARGS if quick else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} failed:\n{proc.stderr[-2000:]}")
    figures = parse(proc.stdout)
    if not figures:
        raise RuntimeError(f"no 'all tracking' summary in {SCRIPT.name}'s output:\n"
                           f"{proc.stdout[-2000:]}")
    notes = [
        "Which stores are measured is the script's choice (when this section was written: "
        "a real `mlflow server` over sqlite on 127.0.0.1, i.e. the remote case; the local "
        "store's cost per call is in the fine-tuning section's `log` figure).",
        f"`python benchmarks/{SCRIPT.name} {' '.join(QUICK_ARGS) if quick else ''}`, "
        "its summary as printed:",
        "```\n" + summary_text(proc.stdout) + "\n```",
    ]
    return Section(TITLE, figures, notes, (before, load1()))
