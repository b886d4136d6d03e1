"""The benchmark suite runs in quick mode and writes every section; no timed assertions."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tests.conftest import REPO, clean_env

MEASURED = ("Fine-tuning throughput", "Masks and scores", "Data loading", "Tracking overhead",
            "End to end", "Structured against unstructured: measured speedup")
REPORT = "Report on 1,000 runs"  # a slot until benchmarks/report_speed.py exists


def summary_rows(text: str) -> list[list[str]]:
    """The cells of the Summary table's rows (header and rule left out)."""
    block = text.split("\n## Summary\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in block.strip().splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


@pytest.mark.slow
def test_the_quick_suite_reports_every_section_with_finite_ratios(tmp_path):
    out = tmp_path / "RESULTS.md"
    committed = REPO / "benchmarks" / "RESULTS.md"
    before = committed.read_bytes() if committed.exists() else None
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--output", str(out)],
        cwd=REPO, env=clean_env(f"sqlite:///{tmp_path / 'unused.db'}"),
        capture_output=True, text=True, timeout=1800,
    )
    print(proc.stderr[-4000:])  # the ratios, in CI's log
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    for heading in ("Machine", "Versions", "Summary", *MEASURED, REPORT):
        assert f"\n## {heading}\n" in text, heading
    for package in ("python", "torch", "torchvision", "mlflow", "optuna"):
        assert f"\n| {package} | " in text
    assert "load average at start" in text and "| CPU | " in text and "| GPU | " in text
    rows = summary_rows(text)
    assert {row[0] for row in rows} >= set(MEASURED)
    for row in rows:
        ratio = float(row[5])
        assert math.isfinite(ratio) and ratio > 0, row
    report = text.split(f"\n## {REPORT}\n", 1)[1]
    assert REPORT in {row[0] for row in rows} or "not available" in report
    assert (committed.read_bytes() if committed.exists() else None) == before  # --output
