"""The report benchmark: runs ``report_speed.py`` and turns its timings into figures.

``python benchmarks/report_speed.py --json PATH [--quick]`` fills a store with 1,000
prune runs (200 in quick mode), times ``python -m mlbench report`` end to end and, in
process, the one MLflow query the report cannot do without; it writes those timings
(seconds) to PATH. The baseline is that bare query: the ratio says how much of the
report's time is the tracking store's, not the report's own work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Figure, Section, load1

SCRIPT = Path(__file__).resolve().parent / "report_speed.py"
TITLE = "Report on 1,000 runs"


def section(quick: bool) -> Section:
    """Run ``report_speed.py`` if it exists; otherwise a section saying it is not available."""
    if not SCRIPT.exists():
        return Section(TITLE, notes=[f"not available: benchmarks/{SCRIPT.name} is not in this "
                                     "checkout yet."])
    before = load1()
    with tempfile.TemporaryDirectory(prefix="mlbench-report-") as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, str(SCRIPT), "--json", str(out), *(["--quick"] if quick else [])]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if proc.returncode not in (0, 1) or not out.exists():  # 1: ran, target missed
            raise RuntimeError(f"{SCRIPT.name} failed:\n{proc.stderr[-2000:]}")
        timings = json.loads(out.read_text())
        runs = timings["runs"]
        figures = [
            Figure(f"`mlbench report` process, {runs:,} prune runs", timings["cli_s"],
                   timings["query_s"], "the bare search_runs query of those runs",
                   target=f"< {timings['target_s']:g} s for 1,000 runs"),
            Figure(f"build_report in process, {runs:,} prune runs", timings["build_s"],
                   timings["query_s"], "the bare search_runs query of those runs"),
        ]
        if "import_s" in timings:  # what the report cannot do without: at most 2x it
            figures.append(Figure(
                f"`mlbench report` process, {runs:,} prune runs, against its imports",
                timings["cli_s"], timings["import_s"],
                f"`python -c \"{timings['imports']}\"`",
                target=">= 0.5 (the report at most 2x its imports)"))
        if "import_cpu_s" in timings:
            figures.append(Figure(
                f"`mlbench report` process CPU (user + system), {runs:,} prune runs",
                timings["cli_cpu_s"], timings["import_cpu_s"],
                f"`python -c \"{timings['imports']}\"` CPU",
                target=">= 0.5 (the report at most 2x its imports)"))
    notes = [f"`python benchmarks/{SCRIPT.name}{' --quick' if quick else ''}`."]
    if proc.stdout.strip():
        notes.append("```\n" + proc.stdout.strip() + "\n```")
    return Section(TITLE, figures, notes, (before, load1()))
