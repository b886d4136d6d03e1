"""A command's Tracker, run by its tracking agent: what the command itself holds.

Importing MLflow and its SQL store costs 2-3 s of CPU that hold the GIL: on a thread
they only take turns with torch's import and the data loading (issue 21). ``prune`` and
``train`` start an ``Agent`` (``_agent``: a process of their own) as they begin, which
pays that on another core while the command imports torch and reads its data; the
command then talks to a ``RemoteTracker``, which has the Tracker's methods and forwards
each call to the agent's Tracker, in order, and returns (or raises) what it did. So this
process never imports mlflow, and each call does exactly what the in-process Tracker
does. This module imports no mlflow and no torch.

Where the agent cannot serve (``--log-model``: the model itself would have to travel;
data parallelism: every rank's process is its own), or ``MLBENCH_TRACKING_AGENT=0``,
the command uses an in-process Tracker as before; ``agent_wanted`` says which.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import itertools
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mlbench.config import TrackingConfig
from mlbench.errors import TrackingUnavailable
from mlbench.tracking._connect import resolve_uri
from mlbench.tracking._records import write_base_folder
from mlbench.tracking._wire import Wire

_GIVEN_UP: list[TrackingUnavailable] = []  # what the agent's link gave up with


def given_up() -> TrackingUnavailable | None:
    """The ``TrackingUnavailable`` the agent's link gave up with, if it did."""
    return _GIVEN_UP[0] if _GIVEN_UP else None


def agent_wanted(*, log_model: bool) -> bool:
    """Whether a ``prune`` or ``train`` command runs its Tracker in an agent: not with
    ``--log-model``, not under torchrun, not with ``MLBENCH_TRACKING_AGENT=0``."""
    if os.environ.get("MLBENCH_TRACKING_AGENT", "1") == "0":
        return False
    if os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
        return False
    return not log_model


# The agent imports this very mlbench, wherever this process found it (a folder put on
# sys.path by hand, say), and otherwise the interpreter's own path as it is.
_START = ("import sys; here = {here!r}\n"
          "if here not in sys.path: sys.path.insert(0, here)\n"
          "from mlbench.tracking._agent import main; main()")


def _store(uri: str | None) -> str:
    """What the agent is told of the store before it is opened: a sqlite URI whole
    (absolute), any other only by its scheme (no password in the process list)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///"):
        return resolve_uri(uri)
    return uri.split("://", 1)[0] if "://" in uri else "file"


class Agent:
    """The tracking agent process, started now (it imports MLflow at once).

    ``tracker(cfg)`` opens the Tracker there; ``close`` (also at exit) waits until what
    it queued is sent and lets it go.

    Example:
        >>> agent = Agent("sqlite:////tmp/m.db")  # at the very start of a command
        >>> tracker = agent.tracker(TrackingConfig(tracking_uri="sqlite:////tmp/m.db"))
    """

    def __init__(self, tracking_uri: str | None) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _START.format(here=str(Path(__file__).resolve().parents[2])),
             str(theirs.fileno()), str(os.getpid()), _store(tracking_uri)],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            start_new_session=True)  # Ctrl-C is this process's: it tells the agent
        theirs.close()
        self.wire = Wire(ours)
        self._seq = itertools.count(1)
        self._waiting: dict[int, queue.SimpleQueue[tuple[str, Any]]] = {}
        self._lock = threading.Lock()
        self._gone: TrackingUnavailable | None = None
        self._opened = False  # nothing to send until a Tracker is opened there
        self._closed = False
        threading.Thread(target=self._listen, name="mlbench-agent", daemon=True).start()
        atexit.register(self.close)

    def tracker(self, cfg: TrackingConfig) -> RemoteTracker:
        """Open the store and the Tracker in the agent (``Tracker(cfg)`` there)."""
        self._opened = True
        return RemoteTracker(cfg, self)

    def request(self, op: str, payload: Any = None) -> Any:  # noqa: ANN401
        """Send one request and wait for its answer; raise what the agent raised."""
        seq, box = next(self._seq), queue.SimpleQueue()
        with self._lock:
            if self._gone is not None:
                raise self._gone
            self._waiting[seq] = box
        try:
            try:
                self.wire.send((seq, op, payload))
            except OSError:
                raise self._went_away() from None
            kind, value = box.get()  # Ctrl-C here: the answer, when it comes, is dropped
        finally:
            with self._lock:
                self._waiting.pop(seq, None)
        if kind == "err":
            raise value
        return value

    def close(self) -> None:
        """Let the agent send what it queued, then exit (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self._opened:  # bad input ended the command first: nothing to wait for
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(Exception):
            self.request("close")
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=10)

    def _went_away(self) -> TrackingUnavailable:
        code = self.proc.poll()
        return TrackingUnavailable(
            f"the tracking agent (process {self.proc.pid}) exited"
            f"{f' with code {code}' if code is not None else ''}; what it had queued is "
            "kept in its outbox and sent by the next command (or `python -m mlbench resend`)")

    def _listen(self) -> None:
        while True:
            try:
                seq, kind, value = self.wire.recv()
            except (EOFError, OSError):
                break
            if kind == "given_up":  # the agent's link gave up: stop training here
                if value is not None and not _GIVEN_UP:
                    _GIVEN_UP.append(value)
                _thread.interrupt_main()
                continue
            with self._lock:
                box = self._waiting.get(seq)
            if box is not None:
                box.put((kind, value))
        gone = self._went_away()
        with self._lock:
            self._gone = gone
            boxes = list(self._waiting.values())
        for box in boxes:
            box.put(("err", gone))


class _Part:
    """A part of the agent's Tracker (``registry``, ``checkpoints``): its calls forward."""

    def __init__(self, agent: Agent, path: str) -> None:
        self._agent = agent
        self._path = path

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        path = f"{self._path}.{name}" if self._path else name

        def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            return self._agent.request("call", (path, args, kwargs))

        call.__name__ = name
        return call


class RemoteTracker(_Part):
    """The Tracker's methods, each run by the agent's Tracker (see ``Tracker``).

    ``cfg`` and ``inside_project`` are held here; ``run`` is a block as the Tracker's is
    (it tells the agent how the block ended: done, failed, interrupted); what takes a
    tensor is written to a file here and the file handed over.
    """

    def __init__(self, cfg: TrackingConfig, agent: Agent) -> None:
        super().__init__(agent, "")
        self.cfg = cfg
        opened = agent.request("open", cfg)
        self.uri: str = opened["uri"]
        self.inside_project: bool = opened["inside_project"]
        os.environ["MLFLOW_TRACKING_URI"] = self.uri  # nested processes agree with us
        self.registry = _Part(agent, "registry")
        self.checkpoints = _Part(agent, "checkpoints")

    @contextlib.contextmanager
    def run(self, *args: Any, **kwargs: Any) -> Iterator[str]:  # noqa: ANN401
        """``Tracker.run``: ends FINISHED, FAILED (an exception) or KILLED (Ctrl-C)."""
        run_id = self._agent.request("enter", (args, kwargs))
        try:
            yield run_id
        except KeyboardInterrupt:
            self._agent.request("exit", "interrupted")  # raises the link's give-up, if so
            raise
        except BaseException:
            with contextlib.suppress(Exception):  # the run's own error is what is said
                self._agent.request("exit", "failed")
            raise
        self._agent.request("exit", None)

    def log_base(self, weights: dict[str, Any], note: dict[str, Any]) -> None:
        """``Tracker.log_base``: the folder is written here, logged there."""
        with tempfile.TemporaryDirectory(prefix="mlbench-") as tmp:
            folder = write_base_folder(Path(tmp), weights, note)
            self._agent.request("call", ("log_base_files", (str(folder),), {}))

    def log_datasets(self, splits: Iterable[Any], data_digest: str) -> None:
        """``Tracker.log_datasets``, the splits' records sent as plain fields."""
        plain = [types.SimpleNamespace(name=s.name, source=s.source, digest=s.digest,
                                       samples=s.samples, context=s.context) for s in splits]
        self._agent.request("call", ("log_datasets", (plain, data_digest), {}))

    def log_pruned(self, model: Any, example: Any) -> None:  # noqa: ANN401
        """Never through the agent (``agent_wanted``: ``--log-model`` runs in process)."""
        raise RuntimeError("--log-model needs the in-process Tracker (agent_wanted)")


__all__ = ["Agent", "RemoteTracker", "agent_wanted", "given_up"]
