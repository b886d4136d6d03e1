"""Talking to a tracking server that fails: one line when it goes, one when it is back."""

from __future__ import annotations

import http.server
import threading

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from mlbench.tracking import Link


class _Failing(http.server.BaseHTTPRequestHandler):
    """A server that answers its health check but fails every API call (HTTP 500)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer(200 if self.path == "/health" else 500)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(500)

    def _answer(self, code: int) -> None:
        body = b"OK" if code == 200 else b'{"error_code": "INTERNAL_ERROR", "message": "db gone"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def failing_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_server_answering_http_500_is_reported_in_one_line_and_retried(failing_server,
                                                                        capsys):
    client = MlflowClient(failing_server)
    link = Link(failing_server, give_up_s=6, max_backoff_s=1)
    with pytest.raises(Exception, match="500|INTERNAL_ERROR|db gone"):
        link.call(client.log_batch, "0" * 32, metrics=[Metric("m", 1.0, 0, 0)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is failing (HTTP 500" in lines[0]


def test_one_line_when_it_goes_and_one_when_it_is_back(capsys):
    tries = iter([ConnectionError("Connection refused")] * 3 + [None])

    def flaky() -> str:
        error = next(tries)
        if error is not None:
            raise error
        return "sent"

    link = Link("http://tracking", max_backoff_s=0.1)
    assert link.call(flaky) == "sent"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "is failing" in lines[0] and "is back after" in lines[1]
