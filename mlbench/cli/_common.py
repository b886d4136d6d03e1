"""Small helpers the subcommands share (no heavy imports)."""

from __future__ import annotations

import os


def main_rank() -> bool:
    """Not one of torchrun's other ranks (rank 0 alone prints results)."""
    return os.environ.get("RANK", "0") == "0"
