"""A tracking server whose API turns to HTTP 500 on demand: a forwarding proxy in front of a
real `mlflow server`, for the fault tests and the fault table (issue 20).

Until ``failing`` is set, every request is forwarded to the real server and its answer
returned as is; once set, every API call gets HTTP 500 while ``/health`` stays fine (a
server whose database went away). Standard library only, so that tests and benchmarks
import it without MLflow.

    with FailingProxy("http://127.0.0.1:5000") as proxy:
        run_against(proxy.url)
        proxy.failing.set()    # the API fails from now on
        proxy.failing.clear()  # and works again
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from types import TracebackType

_FAILED = b'{"error_code": "INTERNAL_ERROR", "message": "database is gone"}'
_DROPPED = ("transfer-encoding", "connection", "content-length", "server", "date")


class _Forward(http.server.BaseHTTPRequestHandler):
    """Forwards one request to ``server.target``, or answers 500 while ``server.failing``."""

    server: _Server

    def _forward(self) -> None:
        if self.server.failing.is_set() and self.path != "/health":
            self._reply(500, {}, _FAILED)
            return
        length = int(self.headers.get("Content-Length") or 0)
        request = urllib.request.Request(
            self.server.target + self.path, data=self.rfile.read(length) if length else None,
            method=self.command,
            headers={k: v for k, v in self.headers.items()
                     if k.lower() not in ("host", "content-length", "connection")})
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                self._reply(reply.status, reply.headers, reply.read())
        except urllib.error.HTTPError as exc:
            self._reply(exc.code, exc.headers, exc.read())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

    def _reply(self, code: int, headers: object, body: bytes) -> None:
        self.send_response(code)
        for key, value in getattr(headers, "items", dict().items)():
            if key.lower() not in _DROPPED:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.target = target.rstrip("/")
        self.failing = threading.Event()


class FailingProxy:
    """The proxy on a free loopback port, serving from a daemon thread until ``close``.

    Args:
        target: the real server's URL, e.g. ``http://127.0.0.1:5000``.
    """

    def __init__(self, target: str) -> None:
        self._server = _Server(target)
        self.failing = self._server.failing  # set: every API call answers HTTP 500
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FailingProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


__all__ = ["FailingProxy"]
