"""Messages between a command and its own tracking agent: length-prefixed JSON.

Used only on the socket pair a command makes for the one child process it starts
(``_remote`` and ``_agent``). Nothing is pickled: a message is JSON, and the few types
the Tracker's calls take and give that JSON lacks travel tagged (a path, a tuple, a
BaseModel, a TrackingConfig, a split's record, an exception). An exception crosses as
itself when it is one of mlbench's or Python's own, otherwise as a RuntimeError that
names it, so the command never imports MLflow to raise it. A value of any other type is
refused where it is sent (TypeError): nothing heavy (a tensor, a model) can cross.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import socket
import struct
import threading
import types
from pathlib import Path
from typing import Any

from mlbench import errors
from mlbench.config import TrackingConfig
from mlbench.tracking._records import BaseModel

_HEADER = struct.Struct("!Q")
_TAG = "__mlbench__"  # the key of a tagged value: {"__mlbench__": kind, "v": value}


def _encode(value: Any) -> Any:  # noqa: ANN401 - any message part
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("the tracking agent's messages take dicts with str keys only")
        if _TAG in value:
            raise TypeError(f"a dict key {_TAG!r} is reserved")
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [_encode(v) for v in value]}
    if isinstance(value, Path):
        return {_TAG: "path", "v": str(value)}
    if isinstance(value, BaseModel):
        return {_TAG: "base", "v": dataclasses.asdict(value)}
    if isinstance(value, TrackingConfig):
        return {_TAG: "tracking", "v": _encode(dataclasses.asdict(value))}
    if isinstance(value, types.SimpleNamespace):
        return {_TAG: "record", "v": _encode(vars(value))}
    if isinstance(value, BaseException):
        return {_TAG: "error", "v": _error(value)}
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy scalar, a
        return _encode(value.item())  # 0-d tensor: a metric's number, as MLflow takes it
    raise TypeError(f"the tracking agent's messages cannot carry {type(value).__name__}")


def _error(exc: BaseException) -> dict[str, str]:
    kind = type(exc)
    if kind.__module__ == "mlbench.errors" and hasattr(errors, kind.__name__):
        name = f"mlbench.{kind.__name__}"
    elif kind.__module__ == "builtins" and isinstance(getattr(builtins, kind.__name__, None),
                                                        type):
        name = kind.__name__
    else:
        text = str(exc).strip()
        return {"type": "RuntimeError",
                "message": f"{kind.__name__}: {text}" if text else kind.__name__}
    return {"type": name, "message": str(exc)}


def _decode(value: Any) -> Any:  # noqa: ANN401 - any message part
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if _TAG not in value:
        return {k: _decode(v) for k, v in value.items()}
    kind, inner = value[_TAG], value["v"]
    if kind == "tuple":
        return tuple(_decode(v) for v in inner)
    if kind == "path":
        return Path(inner)
    if kind == "base":
        return BaseModel(**inner)
    if kind == "tracking":
        return TrackingConfig(**_decode(inner))
    if kind == "record":
        return types.SimpleNamespace(**_decode(inner))
    if kind == "error":
        return _exception(inner["type"], inner["message"])
    raise ValueError(f"unknown tagged value {kind!r} from the tracking agent")


def _exception(name: str, message: str) -> BaseException:
    if name.startswith("mlbench."):
        cls = getattr(errors, name.removeprefix("mlbench."), None)
    else:
        cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls(message) if message else cls()
    return RuntimeError(f"{name}: {message}")


class Wire:
    """Whole messages over a connected stream socket; ``send`` is safe from many threads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: Any) -> None:  # noqa: ANN401 - see the module's docstring
        """Send one message (TypeError for what cannot cross; OSError if the other end is
        gone)."""
        body = json.dumps(_encode(message), allow_nan=True).encode()
        with self._send_lock:
            self.sock.sendall(_HEADER.pack(len(body)) + body)

    def recv(self) -> Any:  # noqa: ANN401 - whatever the other end sent
        """The next message; EOFError once the other end has closed."""
        (size,) = _HEADER.unpack(self._exactly(_HEADER.size))
        return _decode(json.loads(self._exactly(size)))

    def _exactly(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = self.sock.recv(min(left, 1 << 20))
            if not chunk:
                raise EOFError("the other end closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


__all__ = ["Wire"]
