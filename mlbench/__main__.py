"""``python -m mlbench``."""

from mlbench.cli import run

run()
