"""Small helpers the subcommands share (no heavy imports)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlbench.config import TrackingConfig
    from mlbench.runs import OpenTracker


def main_rank() -> bool:
    """Not one of torchrun's other ranks (rank 0 alone prints results)."""
    return os.environ.get("RANK", "0") == "0"


def open_tracker(tracking: TrackingConfig, *, log_model: bool) -> OpenTracker | None:
    """How a ``prune`` or ``train`` command opens its Tracker, decided as it begins: in a
    tracking agent started now, which imports MLflow on another core while this process
    imports torch and reads the data (``mlbench.tracking._remote``); None where the
    agent cannot serve (the run then imports MLflow on a thread of its own)."""
    from mlbench.tracking import Agent, agent_wanted

    if not agent_wanted(log_model=log_model):
        return None
    try:
        agent = Agent(tracking.tracking_uri)
    except OSError:  # no process could be started: the in-process way
        return None
    return agent.tracker
