"""SLOT for the report benchmark: ``report_speed.py`` (the report work provides it).

Contract: ``python benchmarks/report_speed.py --json PATH [--quick]`` exits 0 and writes
to PATH a JSON list of figures, each
``{"name": str, "mlbench": float, "baseline": float, "baseline_name": str,
"unit": "s" or "samples/s", "target": str (optional)}``
(e.g. the report over 1,000 runs against its baseline), and may print notes on stdout.
Until the script exists, the section says "not available".
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
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{SCRIPT.name} failed:\n{proc.stderr[-2000:]}")
        figures = [Figure(**f) for f in json.loads(out.read_text())]
    notes = [f"`python benchmarks/{SCRIPT.name}{' --quick' if quick else ''}`."]
    if proc.stdout.strip():
        notes.append("```\n" + proc.stdout.strip() + "\n```")
    return Section(TITLE, figures, notes, (before, load1()))
