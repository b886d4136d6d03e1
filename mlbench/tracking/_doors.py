"""The run `mlflow run` opened, and the experiment kind the MLflow UI opens on.

``mlflow run`` creates its run (``$MLFLOW_RUN_ID``) and logs the ``-P`` values before
mlbench starts. A refused input must leave nothing that looks like a result, so that run
is marked FAILED and deleted (``discard_project_run``): the UI's run list and the report
never show it, and ``mlflow gc`` removes it for good. MLflow 3's UI opens an experiment
without ``mlflow.experimentKind`` on its GenAI traces page; mlbench's experiments are
model training (``mark_training_experiment``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import mlflow
from mlflow import MlflowClient

EXPERIMENT_KIND = "mlflow.experimentKind"  # read by MLflow 3's UI (ExperimentKind)
TRAINING_KIND = "custom_model_development"  # the UI's "Machine learning" experiment type
REFUSED = "mlbench.refused"  # on a run `mlflow run` opened for an input mlbench refused


def mark_training_experiment(client: MlflowClient, experiment_id: str,
                             tags: dict[str, str] | None = None) -> None:
    """Tag the experiment as model training (once; ``tags``: its tags, if known)."""
    if tags is None:
        tags = client.get_experiment(experiment_id).tags
    if EXPERIMENT_KIND not in tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, TRAINING_KIND)


def discard_project_run() -> str | None:
    """Under `mlflow run`, have its run deleted once MLflow ends it; its id (None outside).

    Called when mlbench refuses its input, before any work. `mlflow run` marks its run
    FAILED after our process exits and fails if the run is deleted by then (MLflow 3.x
    compares the status text with RunStatus numbers, so it always calls set_terminated),
    so a detached process deletes it as soon as MLflow has marked it ended. A run that
    already holds work (metrics or child runs) is kept, FAILED.
    """
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return None
    uri = os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()  # mlflow run's
    client = MlflowClient(uri)
    with contextlib.suppress(mlflow.exceptions.MlflowException):
        run = client.get_run(run_id)
        children = client.search_runs([run.info.experiment_id],
                                      f"tags.`mlflow.parentRunId` = '{run_id}'", max_results=1)
        if children or run.data.metrics:  # work was done under it: keep it, FAILED
            return None
        client.set_tag(run_id, REFUSED, "true")  # marked at once, deleted when ended
        subprocess.Popen(  # noqa: S603 - our own module, our own run id
            [sys.executable, "-m", "mlbench.tracking._doors", run_id],
            env={**os.environ, "MLFLOW_TRACKING_URI": uri},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
    return run_id


def _delete_when_ended(run_id: str, patience_s: float = 300.0) -> None:
    """Delete ``run_id`` once it is no longer RUNNING (``mlflow run`` ends it)."""
    client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri())
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        if client.get_run(run_id).info.status != "RUNNING":
            client.delete_run(run_id)
            return
        time.sleep(0.2)  # poll: MLflow ends the run when our process exits


if __name__ == "__main__":
    _delete_when_ended(sys.argv[1])
