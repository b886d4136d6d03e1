"""Where the tracking store is and whether it lets us in, without importing mlflow.

``resolve_uri`` makes MLflow's default store absolute (so subprocesses agree on it),
``check_reachable`` fails fast, before any data is loaded, on a server that does not
answer or refuses the credentials, and ``quiet`` keeps MLflow's INFO lines off stderr.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from mlbench.errors import ConfigError


def resolve_uri(uri: str | None) -> str:
    """An absolute tracking URI: relative sqlite/file paths are made absolute.

    ``None`` means MLflow's own default (``MLFLOW_TRACKING_URI`` or ``./mlflow.db``),
    resolved against the current directory now, so subprocesses agree on it.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    uri = _credentials_to_env(uri)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    if "://" not in uri:
        return str(Path(uri).resolve())
    if uri.startswith("file://") and not uri.startswith("file:///"):
        return Path(uri[len("file://") :]).resolve().as_uri()
    return uri


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, as a ConfigError, when an HTTP tracking server does not answer or lets
    us in: its health check, then one authenticated API call (credentials come from
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``).
    """
    if not uri.startswith(("http://", "https://")):
        return
    shown = redact(uri)
    uri, in_uri = _split_user(uri)  # issue 20: http://USER:PASSWORD@HOST works (discouraged)
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as reply:
            reply.read()
    except urllib.error.HTTPError:
        pass  # it answers (a proxy may guard /health too): the credentials are checked next
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"--tracking-uri {shown}: no MLflow server answers there ({reason}); start "
            "one with `mlflow server --host 127.0.0.1 --port 5000` or leave the option out to use "
            "./mlflow.db"
        ) from None
    _check_credentials(uri, timeout, in_uri, shown)


def _credentials_to_env(uri: str) -> str:
    """An http(s) URI's ``USER:PASSWORD@`` moved into MLFLOW_TRACKING_USERNAME/PASSWORD
    (where MLflow reads them), so that no line MLflow or mlbench prints shows them (issue
    20); one warning line says so. Other URIs are returned as they are."""
    bare, pair = _split_user(uri)
    if pair is None:
        return uri
    warn_password("--tracking-uri", uri)
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = pair
    return bare


def _split_user(uri: str) -> tuple[str, tuple[str, str] | None]:
    """``uri`` without its ``USER:PASSWORD@``, and that pair (None if it has none)."""
    found = re.match(r"(https?://)([^:/@\s]+):([^@\s/]*)@(.*)", uri)
    if found is None:
        return uri, None
    scheme, user, password, rest = found.groups()
    from urllib.parse import unquote

    return scheme + rest, (unquote(user), unquote(password))


def _check_credentials(uri: str, timeout: float, in_uri: tuple[str, str] | None = None,
                       shown: str | None = None) -> None:
    """One API call with the user's credentials: HTTP 401/403 is bad input."""
    import base64

    shown = shown or redact(uri)
    request = urllib.request.Request(
        uri.rstrip("/") + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if in_uri is not None:
        user, password = in_uri
    if user is not None:
        pair = f"{user}:{password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    elif token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            reply.read()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:  # issue 20: a server whose API fails is no server to start on
            body = exc.read().decode(errors="replace").strip().splitlines()
            raise ConfigError(
                f"--tracking-uri {shown}: the server answers but its API fails (HTTP "
                f"{exc.code}{': ' + redact(body[0])[:120] if body else ''}); fix the server "
                "(its log says why) or point --tracking-uri at another") from None
        if exc.code in (401, 403):
            given = "were refused" if user is not None or token else "are missing"
            raise ConfigError(
                f"--tracking-uri {shown}: the server asks for credentials and they {given} "
                f"(HTTP {exc.code}); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            ) from None
    except (urllib.error.URLError, OSError):
        return  # reachable a moment ago: the run's own retries deal with a blip


_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^:/@\s]*):(?P<secret>[^@\s/]+)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd|token)=)(?P<secret>[^&\s]+)",
                             re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of every URI in it shown as ``***``.

    Example:
        >>> redact("postgresql://mlbench:s3cret@db/optuna")
        'postgresql://mlbench:***@db/optuna'
    """
    text = _PASSWORD.sub(r"\g<head>:***@", text)
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


def has_password(text: str) -> bool:
    """Does ``text`` hold a URI with a password in it?"""
    return redact(text) != text


_WARNED: set[str] = set()  # one line per URI and process


def warn_password(where: str, text: str) -> None:
    """One line on stderr when ``text`` (given as ``where``) carries a password."""
    if has_password(text) and redact(text) not in _WARNED:
        _WARNED.add(redact(text))
        print(f"mlbench: warning: {where} {redact(text)} carries a password, which `ps` and "
              "`mlflow run`'s params show; pass it as PGPASSWORD or ~/.pgpass (databases) or "
              "MLFLOW_TRACKING_PASSWORD (tracking server) instead", file=sys.stderr, flush=True)


def quiet() -> None:
    """Keep stderr for mlbench's own lines: MLflow sets its logger to INFO when imported,
    from ``MLFLOW_LOGGING_LEVEL`` (the user's setting wins)."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    if "mlflow" in sys.modules:
        logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


__all__ = ["check_reachable", "has_password", "quiet", "redact", "resolve_uri", "warn_password"]
