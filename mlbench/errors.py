"""The one exception type that means "the user asked for something impossible"."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: an unknown name, an impossible value, missing data, an unreachable server.

    The CLI turns it into one line on stderr and exit code 2. Raise it at the edge,
    before any work starts, with a message that names the bad value and what is allowed.
    """


class SweepIncomplete(RuntimeError):
    """Some cells failed (and are logged FAILED); running the sweep again redoes them."""
