"""The whole-run comparison with ShrinkBench: runs ``vs_shrinkbench.py`` for the suite.

Needs a ShrinkBench checkout: ``python benchmarks/run.py --shrinkbench PATH`` (or the
environment variable ``MLBENCH_SHRINKBENCH``); without one the section says it was
skipped. Quick mode times 1 pair instead of 5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Figure, Section, load1

SCRIPT = Path(__file__).resolve().parent / "vs_shrinkbench.py"
TITLE = "A whole prune run against ShrinkBench"
ENV = "MLBENCH_SHRINKBENCH"  # run.py --shrinkbench sets it


def section(quick: bool) -> Section:
    """Run the comparison when a checkout is given; otherwise a section that says skipped."""
    checkout = os.environ.get(ENV, "")
    before = load1()
    with tempfile.TemporaryDirectory(prefix="mlbench-vs-sb-") as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, str(SCRIPT), "--json", str(out),
                *(["--shrinkbench", checkout] if checkout else []),
                *(["--pairs", "1"] if quick else [])]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if proc.returncode not in (0, 1) or not out.exists():  # 1: ran, target missed
            raise RuntimeError(f"{SCRIPT.name} failed:\n{proc.stderr[-2000:]}")
        data = json.loads(out.read_text())
    if "skipped" in data:
        return Section(TITLE, notes=[data["skipped"]], load=(before, load1()))
    figures = [Figure(**f) for f in data["figures"]]
    notes = [f"`python benchmarks/{SCRIPT.name} --shrinkbench PATH"
             f"{' --pairs 1' if quick else ''}`: " + SCRIPT.read_text().split('"""')[1]
             .split("\n\n")[0].strip(), "```\n" + data["markdown"] + "\n```"]
    return Section(TITLE, figures, notes, (before, load1()))
