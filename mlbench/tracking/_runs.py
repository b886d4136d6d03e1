"""Runs and logging: DESIGN.md's schema of one MLflow run per unit of work.

Runs are tagged ``mlbench.stage``, nested under the run that orchestrates them, and end
FINISHED, FAILED or KILLED. Every request goes through a ``Link``, so a tracking-server
outage delays a run's logging but never fails a run whose work is done; metrics,
checkpoints and artifacts go from a background thread (``Sender``), so training never
waits for the server; what a process killed during an outage had queued is sent when the
next Tracker on the store opens (``_resend``). Every run carries its owner and a
heartbeat (``_liveness``), and opening a Tracker marks FAILED the runs whose process
died. No password of a URI reaches a param, a tag or a printed line. Base models live
in ``_registry``, training checkpoints in ``_checkpoints``; who does which unit of work is
decided by the sweep queue (``mlbench.tuning``), never here.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus

from mlbench import __version__
from mlbench.config import TrackingConfig
from mlbench.errors import ConfigError, TrackingRefused, TrackingUnavailable
from mlbench.names import DATA_DIGEST, STUDY, TRIAL_NUMBER
from mlbench.options import param_text
from mlbench.tracking._checkpoints import Checkpoints
from mlbench.tracking._connect import check_reachable, redact, resolve_uri, warn_password
from mlbench.tracking._datasets import log_datasets
from mlbench.tracking._doors import mark_training_experiment
from mlbench.tracking._liveness import HEARTBEAT, OWNER, Heartbeat, owner_tag, reap
from mlbench.tracking._owner import process_pid
from mlbench.tracking._params import experiment_name, warn_differing_text
from mlbench.tracking._registry import (
    Registry,
    log_base_files,
    log_base_folder,
    log_pruned_model,
)
from mlbench.tracking._resend import send_left
from mlbench.tracking._sender import Link, Sender, given_up, is_outage
from mlbench.tracking._store import open_store
from mlbench.tracking._tags import CONFIG_HASH, GIT_COMMIT, STAGE, VERSION, WORKER


class Tracker:
    """Opens runs and logs params, metrics and artifacts; ``registry`` finds and registers
    base models, ``checkpoints`` keeps training checkpoints.

    Example:
        >>> tracker = Tracker(TrackingConfig(tracking_uri="sqlite:////tmp/m.db"))
        >>> with tracker.run("prune", "global_weight-c8-s0") as run_id:
        ...     tracker.log_params({"strategy": "global_weight"})
    """

    def __init__(self, cfg: TrackingConfig, *,
                 on_give_up: Callable[[], None] | None = None) -> None:
        """Open the store (made if missing) and send what a dead process left queued.

        ``on_give_up`` is called when the link gives up on the server while sending in
        the background (default: interrupt this process's main thread, which stops
        training with the link's line; a tracking agent tells its command instead).
        """
        self.cfg = cfg
        self.uri = resolve_uri(cfg.tracking_uri)  # credentials moved to the environment
        warn_password("--tracking-uri", self.uri)  # e.g. a database URI's
        check_reachable(self.uri)
        open_store(self.uri)  # a fresh sqlite store: its schema made once, under a lock
        os.environ["MLFLOW_TRACKING_URI"] = self.uri  # nested processes agree with us
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(self.uri)
        self.inside_project = "MLFLOW_RUN_ID" in os.environ
        self.link = Link(self.uri, give_up_s=cfg.give_up)
        self.link.experiment = self.experiment
        if self.inside_project and os.environ.get("MLFLOW_EXPERIMENT_ID"):  # `mlflow run`'s
            self.link.call(mark_training_experiment, self.client,
                           os.environ["MLFLOW_EXPERIMENT_ID"])
        self._sender = Sender(self.client, self.link,  # metrics and files, off the thread
                              interrupt=on_give_up or _thread.interrupt_main)
        self.registry = Registry(self.client, self.link, register=cfg.register)
        self.checkpoints = Checkpoints(self.client, self.link, self._sender)
        self._heartbeat = Heartbeat(self.client)
        self._downloads: dict[tuple[str, str], Path] = {}  # fetched immutable artifacts
        send_left(self.client, self.link)  # what a process killed in an outage queued
        self.reap()

    def reap(self) -> list[str]:
        """Mark FAILED (one line each) the RUNNING runs of this store whose process died."""
        experiments = self.link.call(self.client.search_experiments)
        return reap(self.client, self.link, [e.experiment_id for e in experiments])

    # -- runs ---------------------------------------------------------------------
    @contextlib.contextmanager
    def run(
        self,
        stage: str,
        name: str,
        tags: Mapping[str, str] | None = None,
        *,
        parent_run_id: str | None = None,
        run_id: str | None = None,
    ) -> Iterator[str]:
        """Start a run (or reopen ``run_id``); yield its id.

        Nested under the active run if there is one, or under ``parent_run_id`` (a run of
        another process, such as the sweep run). At top level under `mlflow run`, the run
        MLflow opened is used. Metrics logged asynchronously are flushed before the run
        ends. Ends FINISHED on success, KILLED on Ctrl-C and FAILED on any other
        exception, which propagates.
        """
        all_tags = {STAGE: stage, VERSION: __version__, GIT_COMMIT: _git_commit(),
                    WORKER: f"{socket.gethostname()}:{process_pid()}", OWNER: owner_tag(),
                    HEARTBEAT: f"{time.time():.0f}", **(tags or {})}
        all_tags = {k: redact(str(v)) for k, v in all_tags.items()}
        started = self._start(name, all_tags, parent_run_id, run_id)
        current = started.info.run_id
        self._heartbeat.add(current)
        status = RunStatus.to_string(RunStatus.FAILED)
        try:
            yield current
            self.flush()
            status = RunStatus.to_string(RunStatus.FINISHED)
        except KeyboardInterrupt:
            failure = given_up()  # the sender gave up on the server and stopped training
            if failure is not None:
                raise failure from None
            status = RunStatus.to_string(RunStatus.KILLED)
            raise
        finally:
            self._heartbeat.remove(current)
            if status != RunStatus.to_string(RunStatus.FINISHED):
                with contextlib.suppress(Exception):  # drain; the run failed anyway
                    self.flush()
            active = mlflow.active_run()
            if active is not None and active.info.run_id == current:
                self.link.call(mlflow.end_run, status=status)

    def _start(self, name: str, tags: dict[str, str], parent_run_id: str | None,
               run_id: str | None) -> Any:
        active = mlflow.active_run()
        call = self.link.call
        if run_id is not None:
            started = call(mlflow.start_run, run_id=run_id, nested=active is not None)
            call(self.client.log_batch, run_id, tags=_run_tags(tags))
            return started
        if parent_run_id is not None and active is None:
            parent = call(self.client.get_run, parent_run_id)
            return call(mlflow.start_run, experiment_id=parent.info.experiment_id,
                        run_name=name, tags={**tags, "mlflow.parentRunId": parent_run_id})
        if active is not None:  # a child lives in its parent's experiment
            return call(mlflow.start_run, experiment_id=active.info.experiment_id,
                        nested=True, run_name=name, tags=tags)
        if self.inside_project:  # the run `mlflow run` opened (MLFLOW_RUN_ID)
            started = call(mlflow.start_run, run_name=name)
            call(self.client.log_batch, started.info.run_id,
                 tags=_run_tags({**tags, "mlflow.runName": name}))
            return started
        return call(mlflow.start_run, experiment_id=self.experiment_id(), run_name=name,
                    tags=tags)

    def adopt_project_run(self) -> str:
        """The run `mlflow run` opened, taken over by this process's orchestrating run.

        ``mlflow.start_run`` resumes ``$MLFLOW_RUN_ID`` whenever it is set, so once the
        sweep has made that run its own, no later run (a cell) may find it there: the
        variable is removed (issue 17: a cell took the opened run over, its own parent).
        """
        return os.environ.pop("MLFLOW_RUN_ID")

    def create_run(self, stage: str, name: str, tags: Mapping[str, str]) -> str:
        """A run that no block holds open (a sweep's, ended by ``end_run``); a child of the
        active run if there is one (under `mlflow run -e tune`, the opened run)."""
        all_tags = {STAGE: stage, VERSION: __version__, GIT_COMMIT: _git_commit(), **tags}
        active = mlflow.active_run()
        if active is not None:
            all_tags["mlflow.parentRunId"] = active.info.run_id
        run = self.link.call(self.client.create_run, self.experiment_id(), run_name=name,
                             tags={k: redact(str(v)) for k, v in all_tags.items()})
        return run.info.run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Mark a run made by ``create_run`` ended with ``status``."""
        self.link.call(self.client.set_terminated, run_id, status=status)

    def fail_if_running(self, run_id: str) -> None:
        """Mark a run FAILED if it is still RUNNING (its process is known to be dead)."""
        with contextlib.suppress(mlflow.exceptions.MlflowException):
            if self.link.call(self.client.get_run, run_id).info.status == "RUNNING":
                self.link.call(self.client.set_terminated, run_id, status="FAILED")

    def tag_run(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Tags on a run that no block holds open (one request)."""
        self.link.call(self.client.log_batch, run_id, tags=_run_tags(tags))

    def log_to(self, run_id: str, *, params: Mapping[str, Any] | None = None,
               metrics: Mapping[str, float] | None = None) -> None:
        """Params (but those already set, e.g. by `mlflow run -P`) and metrics on a run that
        no block holds open."""
        now = int(time.time() * 1000)
        existing = self.link.call(self.client.get_run, run_id).data.params if params else {}
        _warn_given_passwords(existing)
        self.link.call(self.client.log_batch, run_id,
                       params=[Param(k, redact(param_text(v))) for k, v in (params or {}).items()
                               if k not in existing],
                       metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()])

    @property
    def experiment(self) -> str:
        """The experiment's name: ``--experiment``, else $MLFLOW_EXPERIMENT_NAME, else
        MLflow's ``Default`` (where ``mlflow run`` puts runs: every door, one experiment)."""
        return experiment_name(self.cfg.experiment)

    def experiment_id(self) -> str:
        """The id of the experiment, created if missing (safe when two processes race)."""
        experiment = self.link.call(self.client.get_experiment_by_name, self.experiment)
        if experiment is not None:
            self.link.call(mark_training_experiment, self.client, experiment.experiment_id,
                           experiment.tags)
            return experiment.experiment_id
        try:
            made = self.client.create_experiment(self.experiment)
        except mlflow.exceptions.MlflowException:  # created meanwhile by another process
            experiment = self.client.get_experiment_by_name(self.experiment)
            if experiment is None:
                raise
            made = experiment.experiment_id
        self.link.call(mark_training_experiment, self.client, made)
        return made

    def find_finished(self, stage: str, config_hash: str) -> str | None:
        """The id of a FINISHED run of ``stage`` with this config hash, if any."""
        experiments = [e.experiment_id for e in self.link.call(self.client.search_experiments)]
        runs = self.link.call(
            self.client.search_runs,
            experiments,
            filter_string=(f"tags.`{STAGE}` = '{stage}' and tags.`{CONFIG_HASH}` = "
                           f"'{config_hash}' and attributes.status = 'FINISHED'"),
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def metrics_of(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of run ``run_id``."""
        return dict(self.link.call(self.client.get_run, run_id).data.metrics)

    def fail_running_trials(self, study: str, numbers: Iterable[int]) -> list[str]:
        """Mark FAILED the ``trial`` runs of ``study``'s trials ``numbers`` left RUNNING.

        Call it only for trials the Optuna storage holds as FAIL (their heartbeat stopped:
        the process that ran them is dead). Returns the ids of the runs it marked.
        """
        wanted = {str(n) for n in numbers}
        if not wanted:
            return []
        experiments = [e.experiment_id for e in self.link.call(self.client.search_experiments)]
        runs = self.link.call(
            self.client.search_runs, experiments,
            filter_string=(f"tags.`{STAGE}` = 'trial' and tags.`{STUDY}` = '{study}' "
                           "and attributes.status = 'RUNNING'"))
        dead = [r.info.run_id for r in runs if r.data.tags.get(TRIAL_NUMBER) in wanted]
        for run_id in dead:
            self.link.call(self.client.set_terminated, run_id, status="FAILED")
        return dead

    # -- logging ------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params in one batch, skipping keys already set (e.g. by `mlflow run -P`).

        Values are written as ``mlbench.options.param_text`` spells them, the text
        ``mlflow run`` logs for the MLproject's defaults, so every door writes the same.
        """
        run = mlflow.active_run()
        existing = self.link.call(self.client.get_run, run.info.run_id).data.params
        _warn_given_passwords(existing)
        texts = {k: redact(param_text(v)) for k, v in params.items()}
        warn_differing_text(existing, texts)
        fresh = [Param(k, v) for k, v in texts.items() if k not in existing]
        for start in range(0, len(fresh), 100):
            self.link.call(self.client.log_batch, run.info.run_id,
                           params=fresh[start : start + 100])

    def log_datasets(self, splits: Iterable[Any], data_digest: str) -> None:
        """The run's train/val/test splits as MLflow dataset inputs, and their digest tag."""
        run_id = mlflow.active_run().info.run_id
        self.link.call(log_datasets, self.client, run_id, splits)
        self.link.call(self.client.set_tag, run_id, DATA_DIGEST, data_digest)

    def log_base(self, weights: dict[str, Any], note: dict[str, Any]) -> None:
        """A base model's ``base_model/`` folder (safetensors weights, ``model.json``)."""
        log_base_folder(self.link, weights, note)

    def log_base_files(self, folder: str | Path) -> None:
        """A ``base_model/`` folder already written (``write_base_folder``): logged as is."""
        log_base_files(self.link, Path(folder))

    def log_pruned(self, model: Any, example: Any) -> None:
        """With ``--log-model``: the pruned network as an MLflow model of the active run."""
        if self.cfg.log_model:
            log_pruned_model(model, example)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, *, wait: bool = True
    ) -> None:
        """Log many metrics in one call (one request against a server).

        With ``wait=False`` (per-epoch curves) the call returns at once and a background
        thread sends it; ``flush`` (called before the run ends) waits for every such
        call and raises if one failed, so a run never ends FINISHED with a gap.
        """
        run_id = mlflow.active_run().info.run_id
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if wait:
            self.link.call(self.client.log_batch, run_id, metrics=batch)
            return
        self._sender.send(run_id, batch, [])

    def flush(self) -> None:
        """Wait for the asynchronous logging; raise if any of it failed."""
        self._sender.flush()

    def log_history(self, history: list[Mapping[str, float]]) -> None:
        """Per-epoch metrics of epochs 1..len(history), all in one request."""
        run_id = mlflow.active_run().info.run_id
        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, epoch)
            for epoch, metrics in enumerate(history, start=1)
            for k, v in metrics.items()
        ]
        for start in range(0, len(batch), 1000):
            self.link.call(self.client.log_batch, run_id, metrics=batch[start : start + 1000])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Tags on the active run, in one request."""
        run_id = mlflow.active_run().info.run_id
        self.link.call(self.client.log_batch, run_id, tags=_run_tags(tags))

    def log_dict(self, data: Any, artifact_file: str) -> None:
        """A JSON artifact (sent from the background thread, like ``log_file``)."""
        text = json.dumps(data, indent=2, sort_keys=True, default=str)
        with tempfile.TemporaryDirectory(prefix="mlbench-") as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_text(text)
            parent = str(Path(artifact_file).parent)
            self.log_file(path, None if parent == "." else parent)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload one local file as an artifact of the active run.

        The file is copied into the outbox and sent from the background thread: the call
        returns at once, the caller may delete ``path``, and the run ends only once it
        is delivered.
        """
        run_id = mlflow.active_run().info.run_id
        self._sender.send_file(run_id, Path(path), artifact_path)

    def download(self, run_id: str, artifact: str, *, cache: bool = False) -> Path:
        """Fetch one artifact of a run to a local temp folder; a ConfigError if missing.

        ``cache`` keeps the file for later calls (for artifacts of finished runs, which
        never change, such as a base model's weights).
        """
        if cache and (run_id, artifact) in self._downloads:
            return self._downloads[(run_id, artifact)]
        target = tempfile.mkdtemp(prefix="mlbench-")
        try:
            try:
                path = Path(self.client.download_artifacts(run_id, artifact, target))
            except Exception as exc:
                if not is_outage(exc):
                    raise
                # the server is away: wait for it through the retrying link (a cell that
                # began in an outage would otherwise fail and be redone, leaving a FAILED
                # run); a missing artifact is said at once, below
                path = Path(self.link.call(self.client.download_artifacts, run_id, artifact,
                                           target))
        except (TrackingUnavailable, TrackingRefused):  # the link's own lines, as they are
            raise
        except Exception as exc:
            raise ConfigError(f"run {run_id} has no artifact {artifact!r}: {exc}") from None
        if cache:
            self._downloads[(run_id, artifact)] = path
        return path


def _run_tags(tags: Mapping[str, str]) -> list[Any]:
    from mlflow.entities import RunTag

    return [RunTag(k, redact(str(v))) for k, v in tags.items()]


def _warn_given_passwords(existing: Mapping[str, str]) -> None:
    """One line per param `mlflow run -P` logged (before mlbench started) with a password."""
    for key, value in existing.items():
        warn_password(f"`mlflow run -P {key}`:", value)


@functools.cache
def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
