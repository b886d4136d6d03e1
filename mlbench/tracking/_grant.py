"""Permissions on MLflow's basic-auth server for a worker user, as its admin.

A worker that is not an admin may write only where it has EDIT: in the experiments its
runs go to, and on the registered base models (``mlbench-DATASET-MODEL``) it registers
versions of. ``grant`` gives it that through MLflow's auth REST API, creating the
experiment first if needed. Run it with the admin's MLFLOW_TRACKING_USERNAME/PASSWORD.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlbench.errors import ConfigError
from mlbench.tracking._connect import redact

PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE")


def grant(uri: str, user: str, experiments: Sequence[str], models: Sequence[str] = (),
          permission: str = "EDIT") -> list[str]:
    """Give ``user`` ``permission`` on ``experiments`` (by name) and registered ``models``.

    Returns one line per grant made. A ConfigError (one line) when the server has no
    basic-auth app, the caller is no admin, or the user does not exist.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    if permission not in PERMISSIONS:
        raise ConfigError(f"--permission must be one of {', '.join(PERMISSIONS)}, got "
                          f"{permission!r}")
    auth = get_app_client("basic-auth", tracking_uri=uri)
    client = MlflowClient(uri)
    done = []
    try:
        auth.get_user(user)
        for name in experiments:
            found = client.get_experiment_by_name(name)
            exp_id = found.experiment_id if found else client.create_experiment(name)
            auth.grant_user_permission(user, "experiment", exp_id, permission)
            done.append(f"{user}: {permission} on experiment {name!r} (id {exp_id})")
        for name in models:
            if client.search_registered_models(f"name = '{name}'") == []:
                client.create_registered_model(name)
            auth.grant_user_permission(user, "registered_model", name, permission)
            done.append(f"{user}: {permission} on registered model {name!r}")
    except MlflowException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"grant on {redact(uri)} failed: {redact(first)[:200]} (run it as "
                          "the server's admin, with MLFLOW_TRACKING_USERNAME/PASSWORD, "
                          "for a user that exists)") from None
    return done


__all__ = ["PERMISSIONS", "grant"]
