"""The benchmark suite: every benchmark, one command, one RESULTS.md.

Each figure is mlbench next to its baseline, both measured in this run, with the
absolute values beside the ratio (mlbench's speed relative to the baseline: above 1 it
is faster). The machine, the versions, the date and the load average go with them.

Run:
    python benchmarks/run.py                 # full: about 8 minutes on 2 quiet cores
    python benchmarks/run.py --quick         # about 3 minutes, for CI
    python benchmarks/run.py --quick --output /tmp/RESULTS.md --only masks,loader
    python benchmarks/run.py --only shrinkbench --shrinkbench ~/shrinkbench --update

``--update`` rewrites only the chosen sections of an existing RESULTS.md (the others, and
the summary rows of the others, are kept as they are): a quick look at one benchmark
never replaces a full run's figures.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import ModuleType

from _common import Section

from mlbench._malloc import steady_malloc
from mlbench.tracking import quiet

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VERSIONED = ("torch", "torchvision", "mlflow", "optuna", "numpy")


def sections() -> dict[str, ModuleType]:
    """Short name -> the benchmark's module (its ``TITLE`` and ``section(quick)``), in the
    order they run."""
    import end_to_end
    import fault_table
    import finetune_throughput
    import loader_speed
    import mask_speed
    import memory
    import report_section
    import shrinkbench_section
    import startup
    import structured_speed
    import tracking_section

    return {
        "startup": startup,
        "finetune": finetune_throughput,
        "masks": mask_speed,
        "loader": loader_speed,
        "tracking": tracking_section,
        "e2e": end_to_end,
        "report": report_section,  # SLOT: benchmarks/report_speed.py, when it exists
        "structured": structured_speed,
        "shrinkbench": shrinkbench_section,  # skipped without --shrinkbench PATH
        "memory": memory,
        "faults": fault_table,  # issue 20: every fault, counted (minutes: --only faults)
    }


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    """Total memory in GiB (nan where /proc/meminfo is missing)."""
    try:
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        return math.nan
    return kib / 2**20


def git_commit() -> str:
    """The repository's short commit, with ``+dirty`` when the tree has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip()
                     else "")


def machine() -> list[tuple[str, str]]:
    """What the numbers ran on."""
    import torch

    gpu = (", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
           if torch.cuda.is_available() else "none")
    load = os.getloadavg()
    return [
        ("CPU", cpu_model()),
        ("cores (usable by this process)", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))})"),
        ("torch threads", str(torch.get_num_threads())),
        ("memory", f"{memory_gib():.0f} GiB"),
        ("GPU", gpu),
        ("load average at start (1, 5, 15 min)", ", ".join(f"{v:.2f}" for v in load)),
    ]


def versions() -> list[tuple[str, str]]:
    """Versions of Python and the libraries the figures depend on."""
    out = [("python", platform.python_version())]
    out += [(name, metadata.version(name)) for name in VERSIONED]
    return out + [("mlbench", f"{metadata.version('mlbench')} ({git_commit()})")]


def value(v: float, unit: str) -> str:
    """A figure's value with its unit, to a sensible precision."""
    if unit == "s":
        return f"{v:.3f} s" if v < 10 else f"{v:.1f} s"
    return f"{v:,.0f} {unit}"


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


FIGURE_HEADER = ("figure", "mlbench", "baseline", "baseline is", "ratio", "target")


def figure_rows(section: Section) -> list[tuple[str, ...]]:
    """One table row per figure of a section."""
    return [(f.name, value(f.mlbench, f.unit), value(f.baseline, f.unit), f.baseline_name,
             f"{f.ratio:.3f}", f.target or "") for f in section.figures]


def render(done: list[Section], command: str, quick: bool, seconds: float,
           host: list[tuple[str, str]], packages: list[tuple[str, str]]) -> str:
    """RESULTS.md: how it was made, machine and versions, a summary, then each section."""
    mode = "quick (`--quick`: fewer repeats, epochs and samples)" if quick else "full"
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [
        "# mlbench benchmark results",
        "",
        f"Made by `{command}` on {date}, mode: "
        f"{mode}, in {seconds:.0f} s. Every ratio is mlbench's speed relative to a baseline "
        "measured side by side in the same run (above 1: mlbench is faster); the absolute "
        "values stand beside it. How each is measured: benchmarks/README.md.",
        "",
        "## Machine",
        "",
        *table([*host, ("load average at end (1, 5, 15 min)", load)], ("", "")),
        "",
        "The load average counts other processes on the machine: above the core count, "
        "every figure is slowed and noisy (ratios less so, being measured side by side).",
        "",
        "## Versions",
        "",
        *table(packages, ("package", "version")),
        "",
        "## Summary",
        "",
    ]
    summary = [(sec.title, *row) for sec in done for row in figure_rows(sec)]
    lines += table(summary, ("section", *FIGURE_HEADER))
    for sec in done:
        lines += ["", f"## {sec.title}", ""]
        load_before, load_after = sec.load
        if not math.isnan(load_before):
            lines += [f"1-minute load average {load_before:.2f} before, {load_after:.2f} after; "
                      f"{sec.seconds:.0f} s.", ""]
        if sec.figures:
            lines += [*table(figure_rows(sec), FIGURE_HEADER), ""]
        lines += [note if note.startswith("```") else f"- {note}" for note in sec.notes]
    return "\n".join(lines) + "\n"


def shrinkbench_env() -> str:
    """The environment variable through which the ShrinkBench section finds its checkout."""
    import shrinkbench_section

    return shrinkbench_section.ENV


def _split(text: str) -> tuple[str, dict[str, str]]:
    """RESULTS.md as (everything before the first section after the summary, sections)."""
    head, *rest = text.split("\n## ")
    parts = {chunk.split("\n", 1)[0]: "## " + chunk for chunk in rest}
    return head, parts


def merged(old: str, new: str, titles: list[str]) -> str:
    """``old`` RESULTS.md with the sections ``titles`` (and their summary rows) taken from
    ``new``; a section ``old`` lacks is appended. The header says which were updated."""
    old_head, old_parts = _split(old)
    _, new_parts = _split(new)
    summary = old_parts.get("Summary", "## Summary\n")
    rows = [line for line in summary.splitlines()
            if not any(line.startswith(f"| {t} |") for t in titles)]
    rows = [r for r in rows if r.startswith("|")]
    rows += [line for line in new_parts.get("Summary", "").splitlines()
             if any(line.startswith(f"| {t} |") for t in titles)]
    old_parts["Summary"] = "## Summary\n\n" + "\n".join(rows) + "\n"
    for title in titles:
        old_parts[title] = new_parts[title]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    note = (f"\nSections updated on {date} by `{shlex.join(sys.argv)}` (load average now "
            f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}): {', '.join(titles)}; the "
            "machine and versions above are the full run's.\n")
    kept = [line for line in old_head.splitlines() if not line.startswith("Sections updated")]
    head = "\n".join(kept).rstrip("\n") + "\n" + note
    return "\n".join([head, *(part.rstrip("\n") + "\n" for part in old_parts.values())])


def failed(title: str, exc: BaseException) -> Section:
    """A section that says its benchmark failed, with the error's last lines."""
    tail = "".join(traceback.format_exception(exc)).strip().splitlines()[-15:]
    return Section(title, notes=[f"FAILED: {exc.__class__.__name__}",
                                "```\n" + "\n".join(tail) + "\n```"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks in order and write the results file."""
    all_sections = sections()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, epochs and samples: about 2-3 minutes")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md",
                        help="where to write the results (default: benchmarks/RESULTS.md)")
    parser.add_argument("--only", default=",".join(all_sections), metavar="LIST",
                        help=f"comma-separated benchmarks (default: all: "
                        f"{','.join(all_sections)})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in this process and OMP_NUM_THREADS for the ones "
                        "it starts (default: torch's own choice)")
    parser.add_argument("--shrinkbench", default=None, metavar="PATH",
                        help="a ShrinkBench checkout for the `shrinkbench` section (without "
                        "it that section is skipped)")
    parser.add_argument("--update", action="store_true",
                        help="replace only the chosen sections in an existing --output")
    args = parser.parse_args(argv)
    if args.shrinkbench:
        os.environ[shrinkbench_env()] = str(Path(args.shrinkbench).expanduser().resolve())
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(all_sections))
    if unknown:
        parser.error(f"--only: unknown benchmark {unknown[0]!r}; "
                     f"choose from {', '.join(all_sections)}")
    steady_malloc()  # as the mlbench CLI does, before any tensor: see mlbench/_malloc.py
    quiet()  # MLflow's INFO lines would bury the suite's progress on stderr
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by subprocesses
    host, packages = machine(), versions()
    start = time.perf_counter()
    done: list[Section] = []
    ok = True
    for name in chosen:
        print(f"[{name}] running...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            sec = all_sections[name].section(args.quick)
        except Exception as exc:  # one failed benchmark must not lose the others' numbers
            sec, ok = failed(all_sections[name].TITLE, exc), False
        sec.seconds = time.perf_counter() - t0
        done.append(sec)
        for row in figure_rows(sec):
            print(f"[{name}] " + " | ".join(row), file=sys.stderr, flush=True)
        print(f"[{name}] {sec.seconds:.0f} s", file=sys.stderr, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None
                                                           else argv)])
    text = render(done, command, args.quick, time.perf_counter() - start, host, packages)
    if args.update and args.output.exists():
        text = merged(args.output.read_text(), text, [sec.title for sec in done])
    args.output.write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
