"""The one exception type that means "the user asked for something impossible"."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: an unknown name, an impossible value, missing data, an unreachable server.

    The CLI turns it into one line on stderr and exit code 2. Raise it at the edge,
    before any work starts, with a message that names the bad value and what is allowed.
    """


class SweepIncomplete(RuntimeError):
    """Some cells failed (and are logged FAILED); running the sweep again redoes them."""


class TrackingUnavailable(RuntimeError):  # issue 20
    """The tracking server kept failing past ``--give-up``: the message is the one line
    the CLI prints (what failed, where the work done is kept, how to send it on); exit 1."""


class TrackingRefused(ConfigError):  # issue 20
    """The tracking server refused these credentials a write (HTTP 403): one line naming
    the user, the experiment and the ``grant`` command that lets them in; exit 2."""
