"""Peak memory of a default digits prune run against ``import torch, mlflow`` (target 1.1x).

Each is one child process in a fresh temp folder (a fresh sqlite store for the run); its
peak resident set size comes from ``os.wait4``'s rusage of that child alone (what
``/usr/bin/time -v`` prints as "Maximum resident set size"). The processes that child
starts count too: ``prune`` runs its Tracker in a tracking agent, a process of its own
(mlbench/tracking/_agent.py), whose peak (``VmHWM``, read from /proc every 20 ms while
the command runs) is added to the command's. The sum of the two peaks is at least the
peak of the two together, so the figure never flatters the run. Quick mode runs 1 base
and 1 fine-tuning epoch instead of the defaults (20 and 5): peak memory is reached
before the epochs add anything.

Run:
    python benchmarks/memory.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Figure, Section, load1

REPO = Path(__file__).resolve().parents[1]
TITLE = "Peak memory of a prune run"
TARGET = 1.1
BASELINE = "import torch, mlflow"
# The same imports without the interpreter's module teardown, which mlbench's command
# skips (mlbench/_exit.py) and which adds ~140 MB to any process that imported torch:
# the like-for-like view of what the run itself holds.
NO_TEARDOWN = "import torch, mlflow, os; os._exit(0)"


# Runs the command in a fresh small process and prints its peak RSS (KiB), the summed
# peaks of the processes it started (KiB) and its exit code: a child forked straight from
# this (possibly large) process would start its high-water mark at this process's size
# (fork shares every page), and ru_maxrss keeps it past exec.
_WRAP = """\
import os, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
peaks = {}
def children(pid):
    try:
        return [int(c) for t in os.listdir(f"/proc/{pid}/task")
                for c in open(f"/proc/{pid}/task/{t}/children").read().split()]
    except OSError:
        return []
def hwm(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
while os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
    todo = children(p.pid)
    while todo:
        pid = todo.pop()
        peaks[pid] = max(peaks.get(pid, 0), hwm(pid))
        todo += children(pid)
    time.sleep(0.02)
_, status, usage = os.wait4(p.pid, 0)
print(usage.ru_maxrss, sum(peaks.values()), os.waitstatus_to_exitcode(status))
"""


def peak_mb(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Peak RSS (MB) of one process running ``argv``, and the summed peaks of the
    processes it started (its tracking agent); raises if it fails."""
    env = {k: v for k, v in os.environ.items()
           # bytecode cached as a normal install does
           if not k.startswith("MLFLOW_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _WRAP, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{' '.join(argv[:4])} failed: {proc.stderr[-1500:]}")
    maxrss_kib, started_kib, code = (int(v) for v in proc.stdout.split()[-3:])
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} exited {code}: {proc.stderr[-1500:]}")
    return maxrss_kib / 1024, started_kib / 1024  # KiB on Linux


def measure(quick: bool) -> dict[str, float]:
    """Peak RSS of the baseline and of the prune run, in MB."""
    epochs = ["--epochs", "1", "--base-epochs", "1"] if quick else []
    with tempfile.TemporaryDirectory(prefix="mlbench-memory-") as tmp:
        folder = Path(tmp)
        baseline = sum(peak_mb([sys.executable, "-c", BASELINE], folder))
        bare = sum(peak_mb([sys.executable, "-c", NO_TEARDOWN], folder))
        command, agent = peak_mb([sys.executable, "-m", "mlbench", "prune", *epochs,
                                  "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"], folder)
    run = command + agent
    return {"prune_mb": run, "command_mb": command, "agent_mb": agent,
            "baseline_mb": baseline, "ratio": run / baseline,
            "no_teardown_mb": bare, "ratio_no_teardown": run / bare}


def section(quick: bool) -> Section:
    """The suite's section (ratio: the baseline's peak over the run's, 1/1.1 = 0.91 at
    the target)."""
    before = load1()
    m = measure(quick)
    fig = Figure("peak RSS of `python -m mlbench prune` (digits, defaults)", m["prune_mb"],
                 m["baseline_mb"], f"`python -c \"{BASELINE}\"`", unit="MB",
                 target=f"run <= {TARGET}x the baseline (ratio >= {1 / TARGET:.2f})",
                 ratio=m["baseline_mb"] / m["prune_mb"])
    like = Figure("the same, against the imports without their teardown", m["prune_mb"],
                  m["no_teardown_mb"], f"`python -c \"{NO_TEARDOWN}\"`", unit="MB",
                  ratio=m["no_teardown_mb"] / m["prune_mb"])
    return Section(TITLE, [fig, like], [
        f"`python benchmarks/memory.py{' --quick' if quick else ''}`: the run peaks at "
        f"{m['ratio']:.3f}x the baseline, and at {m['ratio_no_teardown']:.3f}x the same "
        f"imports without the module teardown. The run's figure is the sum of two peaks: "
        f"the command's ({m['command_mb']:.0f} MB: torch, the model, the data) and its "
        f"tracking agent's ({m['agent_mb']:.0f} MB: MLflow and its SQL store, in a "
        "process of their own). mlbench's command skips the module teardown "
        "(mlbench/_exit.py), which alone raises any process that imported torch by about "
        "140 MB; the second row is the like-for-like view of what the run itself holds."],
        (before, load1()))


def main() -> int:
    """Measure, print, exit 1 when the run peaks above 1.1x the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 base and 1 fine-tuning epoch")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    m = measure(args.quick)
    print(f"prune peak {m['prune_mb']:.0f} MB (command {m['command_mb']:.0f} MB + tracking "
          f"agent {m['agent_mb']:.0f} MB), `{BASELINE}` {m['baseline_mb']:.0f} MB: "
          f"{m['ratio']:.3f}x (target {TARGET}x); without the imports' teardown "
          f"{m['no_teardown_mb']:.0f} MB: {m['ratio_no_teardown']:.3f}x; "
          f"load average {load1():.2f}")
    if args.json:
        args.json.write_text(json.dumps(m))
    return 0 if m["ratio"] <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
