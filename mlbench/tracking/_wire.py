"""Messages between a command and its own tracking agent: length-prefixed pickles.

Only ever used on a socket pair that the command creates and hands to the one child
process it starts (``_remote`` and ``_agent``): both ends are mlbench, no other process
can write to it, so what is unpickled here was written by mlbench itself (like
``multiprocessing``'s pipes). Nothing read from disk or a network passes through here.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
from typing import Any

_HEADER = struct.Struct("!Q")


class Wire:
    """Whole messages over a connected stream socket; ``send`` is safe from many threads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: Any) -> None:  # noqa: ANN401 - any picklable message
        """Send one message (raises OSError if the other end is gone)."""
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            self.sock.sendall(_HEADER.pack(len(body)) + body)

    def recv(self) -> Any:  # noqa: ANN401 - whatever the other end sent
        """The next message; EOFError once the other end has closed."""
        (size,) = _HEADER.unpack(self._exactly(_HEADER.size))
        return pickle.loads(self._exactly(size))  # noqa: S301 - our own child's bytes

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
