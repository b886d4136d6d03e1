"""Start-up: how long mlbench takes before it does any work, next to ``import torch``.

Each command runs as a fresh process (``sys.executable``), 5 times (quick mode: two
commands once each, for CI),
interleaved with its baseline so both see the same load; the median is reported. The
baseline of every figure is ``python -c "import torch"``: the issue's targets are
``--help`` and bad input under 1.5 s (so before torch), and every other command no
slower than 1.3x ``import torch`` until it starts real work. Bad input that needs no
model or data, and ``list``, import no torch at all (tests/test_options.py asserts it).

    python benchmarks/startup.py            # prints the section as markdown
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import Figure, Section, load1

TITLE = "Start-up"
REPO = Path(__file__).resolve().parents[1]
BASELINE = ("import torch", [sys.executable, "-c", "import torch"])
COMMANDS = [
    ("`python -m mlbench --help`", ["--help"], "< 1.5 s"),
    ("`python -m mlbench prune --help`", ["prune", "--help"], "< 1.5 s"),
    ("`python -m mlbench list`", ["list"], "<= 1.3x import torch"),
    ("bad input: `prune --strategy magic` (one line, exit 2)", ["prune", "--strategy", "magic"],
     "< 1.5 s"),
    ("bad input: `sweep --compressions nan`", ["sweep", "--compressions", "nan"], "< 1.5 s"),
    ("`import mlbench.recipe` (what `prune` loads before it reads data; mlflow after)", None,
     "<= 1.3x import torch"),
]
PIPELINE = [sys.executable, "-c", "import mlbench.recipe"]


def _seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, capture_output=True, timeout=600)
    return time.perf_counter() - start


def section(quick: bool) -> Section:
    """Median wall time of each command against ``import torch``, interleaved."""
    repeats = 1 if quick else 5
    before = load1()
    figures = []
    for name, args, target in COMMANDS[1:3] if quick else COMMANDS:
        argv = PIPELINE if args is None else [sys.executable, "-m", "mlbench", *args]
        ours, base = [], []
        for _ in range(repeats):
            ours.append(_seconds(argv))
            base.append(_seconds(BASELINE[1]))
        figures.append(Figure(name, statistics.median(ours), statistics.median(base),
                              f"`python -c \"{BASELINE[0]}\"`", "s", target))
    if not quick:
        figures.append(register_figure())
    notes = [
        f"Median of {repeats} fresh processes each, every one interleaved with an `import "
        "torch` process so both see the same load; a ratio above 1 means faster than "
        "importing torch. mlflow itself imports pandas (its `mlflow.data`), so pandas "
        "loads with mlflow and no earlier; torchvision (which pulls torch._dynamo) loads "
        "only to read a torchvision dataset or build a torchvision model, and mlflow when a "
        "run starts (after `prune` has read its data).",
    ]
    return Section(TITLE, figures, notes, load=(before, load1()))


def register_figure(repeats: int = 3) -> Figure:
    """Logging and registering a base model, against writing and logging its weights alone.

    Each repeat is a fresh process (what a train run pays: the first registration in a
    process), on its own sqlite store; the median of ``repeats``.
    """
    ours, base = [], []
    for _ in range(repeats):
        weights, register = map(float, subprocess.run(
            [sys.executable, "-c", _REGISTER], cwd=REPO, capture_output=True, text=True,
            check=True, timeout=600).stdout.split())
        ours.append(register)
        base.append(weights)
    return Figure("log + register + describe a base model (lenet): `base_model/` folder",
                  statistics.median(ours), statistics.median(base),
                  "writing and logging its weights (safetensors)", "s", "< +0.5 s")


# One process: a store with a finished run (as a train run has logged its epochs by the
# time it registers), then the weights alone, then what train_base does with them.
_REGISTER = """
import tempfile, time
from pathlib import Path
import torch
from safetensors.torch import save_file
from mlbench.config import TrackingConfig
from mlbench.models import create_model
from mlbench.tracking import Tracker
model = create_model("lenet", (1, 8, 8), 10).eval()
state = {k: v.contiguous() for k, v in model.state_dict().items()}
note = {"model": "lenet", "input_shape": [1, 8, 8], "num_classes": 10}
with tempfile.TemporaryDirectory() as tmp:
    tracker = Tracker(TrackingConfig(tracking_uri=f"sqlite:///{tmp}/m.db", experiment="s"))
    with tracker.run("train", "warm-up"):
        tracker.log_metrics({"acc1": 0.5})
    with tracker.run("train", "register"):
        start = time.perf_counter()
        save_file(state, str(Path(tmp) / "weights.safetensors"))
        tracker.log_file(Path(tmp) / "weights.safetensors")
        weights = time.perf_counter() - start
        start = time.perf_counter()
        tracker.log_base(state, note)
        version = tracker.registry.register("mlbench-bench-lenet", "h", note)
        tracker.registry.describe("mlbench-bench-lenet", version, "a base", alias="seed-0")
        print(weights, time.perf_counter() - start)
"""


if __name__ == "__main__":
    done = section("--quick" in sys.argv)
    print(f"## {done.title}\n")
    print(f"load average (1 min) before {done.load[0]:.2f}, after {done.load[1]:.2f}\n")
    print("| figure | mlbench | baseline | baseline is | ratio | target |")
    print("|---|---|---|---|---|---|")
    for f in done.figures:
        print(f"| {f.name} | {f.mlbench:.2f} s | {f.baseline:.2f} s | {f.baseline_name} | "
              f"{f.ratio:.2f} | {f.target} |")
    print()
    print(*done.notes, sep="\n")
