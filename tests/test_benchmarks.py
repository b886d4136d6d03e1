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


def _sections() -> list[str]:
    """The suite's section names, as ``benchmarks/run.py`` registers them."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import run

        return list(run.sections())
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


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
    # every section but the fault table (minutes; tests/test_faults.py runs its faults)
    only = ",".join(s for s in _sections() if s != "faults")
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--output", str(out), "--only", only],
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


# -- issue 21: the ShrinkBench comparison's pieces and --update, without ShrinkBench --------
def test_vs_shrinkbench_skips_in_one_line_without_a_checkout(tmp_path):
    script = str(REPO / "benchmarks" / "vs_shrinkbench.py")
    proc = subprocess.run([sys.executable, script, "--json", str(tmp_path / "f.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().count("\n") == 0
    assert "skipped: no ShrinkBench checkout given (--shrinkbench PATH" in proc.stdout
    assert "skipped" in (tmp_path / "f.json").read_text()
    bad = subprocess.run([sys.executable, script, "--shrinkbench", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a ShrinkBench checkout" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stderr.strip().count("\n") == 0


def test_synthetic_cifar_files_load_through_torchvision_with_the_site_patch(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import make_cifar_files
    finally:
        sys.path.pop(0)
    folder = make_cifar_files.write(tmp_path / "data", train=20, test=5, seed=1)
    site = make_cifar_files.write_site(tmp_path / "site")
    code = ("from torchvision.datasets import CIFAR10 as C; import sys; r = sys.argv[1]; "
            "a, b = C(r, train=True), C(r, train=False); "
            "print(len(a), len(b), a.data.shape, sorted(set(a.targets)) <= list(range(10)))")
    env = {**clean_env("sqlite:///unused.db"), "PYTHONPATH": str(site),
           "MLBENCH_CIFAR_CHECKSUMS": str(folder / make_cifar_files.CHECKSUMS)}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.split() == ["20", "5", "(20,", "32,", "32,", "3)", "True"], proc.stderr
    env.pop("MLBENCH_CIFAR_CHECKSUMS")  # without the patch torchvision rejects them
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "corrupted" in proc.stderr


def test_update_replaces_only_the_chosen_sections():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import run
    finally:
        sys.path.pop(0)

    def results(a: str, b: str) -> str:
        return ("# mlbench benchmark results\n\nMade by x.\n\n## Machine\n\n| CPU | y |\n\n"
                "## Summary\n\n| section | figure |\n|---|---|\n"
                f"| A | {a} |\n| B | {b} |\n\n## A\n\n{a}\n\n## B\n\n{b}\n")

    merged = run.merged(results("old-a", "old-b"), results("new-a", "new-b"), ["B"])
    assert "| A | old-a |" in merged and "| B | new-b |" in merged
    assert "\n## A\n\nold-a\n" in merged and "\n## B\n\nnew-b\n" in merged
    assert "old-b" not in merged and "new-a" not in merged
    assert "Sections updated on" in merged and "| CPU | y |" in merged
