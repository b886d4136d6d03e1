"""Talking to a tracking server that fails: one line when it goes, one when it is back, and
a server that keeps answering with errors named in one line after ``--give-up``."""

from __future__ import annotations

import http.server
import threading

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from mlbench.errors import ConfigError, TrackingUnavailable
from mlbench.tracking import Link, _sender, check_reachable, redact


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


@pytest.fixture(autouse=True)
def _fresh_give_up():
    """A give-up ends its process; each test here is a process of its own."""
    _sender._GIVEN_UP.clear()
    yield
    _sender._GIVEN_UP.clear()


def test_a_server_answering_http_500_is_named_in_one_line_after_give_up(failing_server,
                                                                        capsys):
    client = MlflowClient(failing_server)
    link = Link(failing_server, give_up_s=3, max_backoff_s=1)
    with pytest.raises(TrackingUnavailable) as caught:
        link.call(client.log_batch, "0" * 32, metrics=[Metric("m", 1.0, 0, 0)])
    (line,) = str(caught.value).splitlines()
    assert f"{failing_server} keeps failing (HTTP 500" in line and "--give-up" in line
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is failing (HTTP 500" in lines[0]
    with pytest.raises(TrackingUnavailable):  # given up: nothing more is tried
        link.call(lambda: pytest.fail("called after the give-up"))


def test_the_start_up_check_refuses_a_server_whose_api_answers_500(failing_server):
    with pytest.raises(ConfigError, match="the server answers but its API fails .HTTP 500"):
        check_reachable(failing_server)


def test_a_server_that_does_not_answer_is_waited_for_past_give_up(capsys):
    tries = iter([ConnectionError("Connection refused")] * 4 + [None])

    def restarting() -> str:
        error = next(tries)
        if error is not None:
            raise error
        return "sent"

    link = Link("http://tracking", give_up_s=0.01, max_backoff_s=0.1)
    assert link.call(restarting) == "sent"  # an outage: waited for (an hour), not given up
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "is failing" in lines[0] and "is back after" in lines[1]


def test_a_password_in_the_uri_is_never_printed(capsys):
    tries = iter([ConnectionError("Connection refused"), None])

    def flaky() -> None:
        error = next(tries)
        if error is not None:
            raise error

    Link("http://worker:hunter2-secret@tracking:5000", max_backoff_s=0.1).call(flaky)
    err = capsys.readouterr().err
    assert "hunter2" not in err and "worker:***@tracking" in err
    assert redact("postgresql+psycopg://u:p%40ss@db:5432/o") == "postgresql+psycopg://u:***@db:5432/o"


def test_no_password_reaches_a_param_or_tag_and_a_given_one_is_named(tmp_path, capsys):
    """`mlflow run -P storage=postgresql://u:PW@...` logs the value before mlbench starts:
    mlbench says so in one line; whatever mlbench logs itself shows the password as ***."""
    import mlflow

    from mlbench.config import TrackingConfig
    from mlbench.tracking import Tracker

    secret = "pw-9876-secret"  # noqa: S105 - a test's
    url = f"postgresql://mlbench:{secret}@db.example.com/optuna"
    tracker = Tracker(TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}"))
    with tracker.run("sweep", "sweep-x", {"mlbench.storage": url}) as run_id:
        mlflow.log_param("storage_given", url)  # as `mlflow run -P` would have
        tracker.log_params({"storage": url, "storage_given": url})
        tracker.set_tags({"mlbench.queue": url})
    tracker.log_to(run_id, params={"queue": url})
    run = MlflowClient(tracker.uri).get_run(run_id)
    mine = {**{k: v for k, v in run.data.params.items() if k != "storage_given"},
            **run.data.tags}
    assert not [v for v in mine.values() if secret in v]
    assert run.data.params["storage"] == "postgresql://mlbench:***@db.example.com/optuna"
    err = capsys.readouterr().err
    assert secret not in err
    (line,) = [x for x in err.splitlines() if "carries a password" in x]
    assert "-P storage_given" in line and "PGPASSWORD" in line
