"""The tracking agent: a command's ``Tracker``, in a process of its own (issue 21).

``main(FD, PID, STORE)``, started by ``_remote.Agent`` (``python -c``) as the
command begins. It imports MLflow and the store's modules (2-3 s of CPU, which hold the
GIL, so a thread could not hide them) while the command imports torch and reads its
data on the other core, and connects to a local sqlite store that already exists
(``STORE`` is its URI; for any other store only the URI's scheme, so that no password
shows in the process list); then it opens the ``Tracker`` when asked and runs every call
the command makes on it, in order, on its one main thread (MLflow's active run is
per thread). What the command asked for is exactly what an in-process ``Tracker``
does: the same code, the same outbox, heartbeat and retrying link.

It lives and dies with the command:

- it is the command's: runs and outboxes name the command's pid as their owner, so
  the reaper judges the command's life;
- it dies with it: on Linux the kernel kills it when the command dies
  (``PR_SET_PDEATHSIG``, a kill -9 included), and anywhere it exits when the socket
  closes; a command that ends normally asks it to flush and exit first;
- Ctrl-C is the command's: the agent is in a session of its own and ignores SIGINT;
  the command tells it how its run ended (interrupted, failed, done);
- when its link gives up on the server, it tells the command, which stops training
  with the link's line, as the in-process sender interrupts the main thread.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from mlbench.tracking._wire import Wire

# What opening a store of each scheme imports: imported before the store is opened
# (the command opens it only once its input has passed, so bad input makes no store).
_WARM = {
    "sql": ("mlflow.store.tracking.sqlalchemy_store",
            "mlflow.store.model_registry.sqlalchemy_store"),
    "http": ("mlflow.store.tracking.rest_store", "mlflow.store.model_registry.rest_store"),
    "file": ("mlflow.store.tracking.file_store", "mlflow.store.model_registry.file_store"),
}
_SQL = ("sqlite", "postgresql", "mysql", "mssql")
_OPS = ("open", "call", "enter", "exit", "close")  # what a command may ask of its agent


class _Interrupted(KeyboardInterrupt):
    """The command's run block was interrupted (Ctrl-C, or the link gave up)."""


class _Failed(Exception):
    """The command's run block raised: the run ends FAILED."""


def warm_modules(scheme: str) -> tuple[str, ...]:
    """The store modules to import ahead for a tracking URI's scheme."""
    base = scheme.split("+")[0]
    if base in _SQL:
        return _WARM["sql"]
    if base in ("http", "https", "databricks"):
        return _WARM["http"]
    return _WARM["file"] if base in ("file", "") else ()


class Serve:
    """Runs the command's calls on the Tracker, one message at a time."""

    def __init__(self, wire: Wire, tracker_class: Callable[..., Any] | BaseException) -> None:
        self.wire = wire
        self.tracker_class = tracker_class
        self.tracker: Any = None
        self.runs: list[Any] = []  # the open run blocks, innermost last

    def loop(self) -> None:
        """Answer messages until the command closes the socket or says ``close``."""
        while True:
            try:
                seq, op, payload = self.wire.recv()
            except (EOFError, OSError):
                os._exit(0)  # the command is gone; its outbox keeps what was not sent
            try:
                if op not in _OPS:
                    raise ValueError(f"the tracking agent has no operation {op!r}")
                value = getattr(self, f"_{op}")(payload)
                reply = (seq, "ok", value)
            except BaseException as exc:  # noqa: BLE001 - raised again in the command
                reply = (seq, "err", exc)  # crosses as itself or as a named RuntimeError
            try:
                try:
                    self.wire.send(reply)
                except TypeError as exc:  # a value that cannot cross: said, not sent
                    self.wire.send((seq, "err", exc))
            except OSError:
                os._exit(0)
            if op == "close":  # exit hooks run: an emptied outbox folder is removed
                from mlbench._exit import exit_now

                exit_now(0)

    def _open(self, cfg: Any) -> dict[str, Any]:  # noqa: ANN401 - a TrackingConfig
        if isinstance(self.tracker_class, BaseException):
            raise self.tracker_class  # MLflow failed to import here
        self.tracker = self.tracker_class(cfg, on_give_up=self._gave_up)
        return {"inside_project": self.tracker.inside_project, "uri": self.tracker.uri}

    def _call(self, payload: tuple[str, tuple[Any, ...], dict[str, Any]]) -> Any:  # noqa: ANN401
        path, args, kwargs = payload
        target = self.tracker
        for name in path.split("."):
            if name.startswith("_"):
                raise AttributeError(f"the tracking agent serves no private name {path!r}")
            target = getattr(target, name)
        return target(*args, **kwargs) if callable(target) else target

    def _enter(self, payload: tuple[tuple[Any, ...], dict[str, Any]]) -> str:
        args, kwargs = payload
        block = self.tracker.run(*args, **kwargs)
        run_id = block.__enter__()
        self.runs.append(block)
        return run_id

    def _exit(self, how: str | None) -> None:
        block = self.runs.pop()
        exc: BaseException | None = {"interrupted": _Interrupted(), "failed": _Failed()}.get(
            how or "")
        if exc is None:
            block.__exit__(None, None, None)
            return
        try:
            block.__exit__(type(exc), exc, None)
        except (_Interrupted, _Failed):  # ended KILLED or FAILED, as told
            return

    def _close(self, _: Any) -> None:  # noqa: ANN401
        if self.tracker is not None:
            with contextlib.suppress(Exception):  # a failure was said at the run's end
                self.tracker.flush()

    def _gave_up(self) -> None:
        """The link gave up on the server: the command stops training with its line."""
        from mlbench.tracking._sender import given_up

        failure = given_up()
        with contextlib.suppress(OSError):
            self.wire.send((0, "given_up", failure))


def _die_with(parent: int) -> None:
    """Be killed by the kernel when ``parent`` dies (Linux); leave now if it already did."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)


def _warm(store: str) -> None:
    """Import what opening ``store`` imports; connect to it if it is a sqlite file that
    exists (a store that does not exist yet is made only once the command's input has
    passed its checks: bad input makes no store)."""
    scheme = store.split("://", 1)[0] if "://" in store else store
    for module in warm_modules(scheme):
        with contextlib.suppress(ImportError):  # an optional store: said when opened
            importlib.import_module(module)
    from mlbench.tracking._runs import _git_commit
    from mlbench.tracking._sqlite_runs import sqlite_path

    _git_commit()  # every run's tag; cached
    path = sqlite_path(store) if "://" in store else None
    if path is not None and path.is_file():
        from mlflow import MlflowClient

        from mlbench.tracking._store import open_store

        with contextlib.suppress(Exception):  # any trouble is met again, and said, at open
            open_store(store)
            # the query the Tracker's reaper makes first, read only: SQLAlchemy compiles
            # it once per process (~0.2 s), here before the command waits on it
            client = MlflowClient(store)
            ids = [e.experiment_id for e in client.search_experiments()]
            if ids:
                client.search_runs(ids, "attributes.status = 'RUNNING'", max_results=5000)


def main(argv: list[str] | None = None) -> None:
    """The agent process: see the module's docstring."""
    fd, parent, store = (argv or sys.argv[1:])[:3]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle
    _die_with(int(parent))
    wire = Wire(socket.socket(fileno=int(fd)))
    from mlbench.tracking import _owner
    from mlbench.tracking._connect import quiet

    _owner.run_by(int(parent))  # the command's runs and outboxes: its pid, its life
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    tracker_class: Callable[..., Any] | BaseException
    try:
        from mlbench.tracking._runs import Tracker

        quiet()
        _warm(store)
        tracker_class = Tracker
    except Exception as exc:  # noqa: BLE001 - said when the command opens the tracker
        tracker_class = exc
    Serve(wire, tracker_class).loop()


if __name__ == "__main__":
    main()
