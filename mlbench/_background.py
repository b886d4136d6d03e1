"""One call on a daemon thread, its result (or exception) collected later.

For fixed costs that wait on other work: a ``prune`` or ``train`` run whose Tracker stays
in process (``runs.in_process``: library use, ``--log-model``, torchrun) imports MLflow
while the data is read and the model is built. The commands themselves run the Tracker
in a tracking agent (``mlbench.tracking._remote``), a process of its own: MLflow's
import holds the GIL, so a thread only takes turns with torch's (issue 21).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """``fn()`` started now on a daemon thread (the process never waits on it to exit).

    Example:
        >>> later = Background(lambda: 6 * 7)
        >>> later.result()
        42
    """

    def __init__(self, fn: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True,
                                        name="mlbench-background")
        self._thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self._value = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc

    def result(self) -> T:
        """Wait for the call; return its value or raise its exception here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
