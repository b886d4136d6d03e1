"""Records the pipeline and the tracker pass between them; no mlflow needed to hold one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BaseModel:
    """A registered dense base model: the run that made it, its registered name and
    version (None where it is not registered, or on a torchrun rank other than 0)."""

    run_id: str
    name: str
    version: str | None


__all__ = ["BaseModel"]
