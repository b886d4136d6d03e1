"""The Tracker: runs, params, metrics, artifacts, claims and registered base models.

DESIGN.md's schema: one run per unit of work, tagged ``mlbench.stage``, nested under
the run that orchestrates it; base models registered in the Model Registry and found
again by the hash of what determines them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag

from mlbench import __version__
from mlbench.config import TrackingConfig
from mlbench.errors import ConfigError
from mlbench.names import (  # the vocabulary lives in mlbench/names.py
    BASE_HASH,
    CONFIG_HASH,
    DATA_DIGEST,
    GIT_COMMIT,
    STAGE,
    VERSION,
)
from mlbench.options import param_text
from mlbench.tracking._datasets import log_datasets
from mlbench.tracking._params import experiment_name, warn_differing_text
from mlbench.tracking._sender import Sender

WEIGHTS = "weights.safetensors"
WORKER = "mlbench.worker"  # host:pid of the process doing a run
HEARTBEAT = "mlbench.heartbeat"  # unix time of its last epoch
CHECKPOINT_EPOCH = "mlbench.checkpoint_epoch"  # the epoch of the run's last checkpoint
RESUMED_FROM = "mlbench.resumed_from"  # the interrupted run this one continued
RESUMED_EPOCH = "mlbench.resumed_epoch"
CHECKPOINT_DIR = "checkpoint"
STALE_AFTER_S = float(os.environ.get("MLBENCH_STALE_AFTER", "900"))  # other hosts' runs
# Claims settle this long before the election: longer than any create-run request takes,
# so every contender sees every other one and all elect the same winner. Against a server
# (other machines, network latency) 1 s; on a local store, where a request takes
# milliseconds and every contender is on this host, 0.1 s. MLBENCH_CLAIM_SETTLE overrides.
CLAIM_SETTLE_S = float(os.environ.get("MLBENCH_CLAIM_SETTLE", "1"))
LOCAL_CLAIM_SETTLE_S = float(os.environ.get("MLBENCH_CLAIM_SETTLE", "0.1"))


class CellTaken(Exception):  # noqa: N818 - a signal, not an error
    """Another live worker holds this cell; the run opened for it was deleted."""


def resolve_uri(uri: str | None) -> str:
    """An absolute tracking URI: relative sqlite/file paths are made absolute.

    ``None`` means MLflow's own default (``MLFLOW_TRACKING_URI`` or ``./mlflow.db``),
    resolved against the current directory now, so subprocesses agree on it.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    if "://" not in uri:
        return str(Path(uri).resolve())
    if uri.startswith("file://") and not uri.startswith("file:///"):
        return Path(uri[len("file://") :]).resolve().as_uri()
    return uri


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, as a ConfigError, when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as reply:
            reply.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"--tracking-uri {uri}: no MLflow server answers there ({reason}); start one with "
            "`mlflow server --host 127.0.0.1 --port 5000` or leave the option out to use "
            "./mlflow.db"
        ) from None


@dataclass(frozen=True)
class BaseModel:
    """A registered dense base model: where its weights are and what made them."""

    run_id: str
    name: str
    version: str | None


class Tracker:
    """Opens runs, logs params/metrics/artifacts and finds registered base models.

    Example:
        >>> tracker = Tracker(TrackingConfig(tracking_uri="sqlite:////tmp/m.db"))
        >>> with tracker.run("prune", "global_weight-c8-s0") as run_id:
        ...     tracker.log_params({"strategy": "global_weight"})
    """

    def __init__(self, cfg: TrackingConfig) -> None:
        self.cfg = cfg
        self.uri = resolve_uri(cfg.tracking_uri)
        check_reachable(self.uri)
        os.environ["MLFLOW_TRACKING_URI"] = self.uri  # nested processes agree with us
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(self.uri)
        self.inside_project = "MLFLOW_RUN_ID" in os.environ
        self._claims: dict[str, tuple[str, str] | None] = {}  # run id -> unsettled claim
        self._sender = Sender(self.client)  # per-epoch metrics, off the training thread
        self._bases: dict[tuple[str, str], BaseModel] = {}  # found base models
        self._downloads: dict[tuple[str, str], Path] = {}  # fetched immutable artifacts

    # -- runs ---------------------------------------------------------------------
    @contextlib.contextmanager
    def run(
        self,
        stage: str,
        name: str,
        tags: Mapping[str, str] | None = None,
        *,
        resume: bool = False,
        parent_run_id: str | None = None,
        exclusive: bool = False,
    ) -> Iterator[str]:
        """Start (or, at top level under `mlflow run`, resume) a run; yield its id.

        Nested under the active run if there is one. With ``resume``, a top-level run
        of the same stage and config hash is reopened (a sweep started again), and its
        children left RUNNING by a dead process are marked FAILED. ``parent_run_id``
        nests a run started by another process (a sweep worker). With ``exclusive``,
        the run is a claim on its config hash, settled by ``confirm_claim`` (which the
        block calls before its exclusive work, or which runs when the block ends): if
        another live run holds that hash, this run is deleted and CellTaken is raised.
        Metrics logged asynchronously are flushed before the run ends. Ends FINISHED
        on success, KILLED on Ctrl-C and FAILED on any other exception, which
        propagates.
        """
        active = mlflow.active_run()
        all_tags = {
            STAGE: stage,
            VERSION: __version__,
            GIT_COMMIT: _git_commit(),
            WORKER: f"{socket.gethostname()}:{os.getpid()}",
            HEARTBEAT: str(time.time()),
            **(tags or {}),
        }
        started, fresh = self._start(stage, name, all_tags, active, resume, parent_run_id)
        run_id = started.info.run_id
        if not fresh:
            mlflow.set_tags(all_tags)
        if self.inside_project and active is None:
            mlflow.set_tag("mlflow.runName", name)
        status = RunStatus.to_string(RunStatus.FAILED)
        self._claims[run_id] = (stage, all_tags[CONFIG_HASH]) if exclusive else None
        try:
            yield run_id
            self.confirm_claim()
            self.flush()
            status = RunStatus.to_string(RunStatus.FINISHED)
        except CellTaken:
            status = RunStatus.to_string(RunStatus.KILLED)
            mlflow.end_run(status=status)
            self.client.delete_run(run_id)
            raise
        except KeyboardInterrupt:
            status = RunStatus.to_string(RunStatus.KILLED)
            raise
        finally:
            self._claims.pop(run_id, None)
            if status != RunStatus.to_string(RunStatus.FINISHED):
                with contextlib.suppress(Exception):  # drain; the run failed anyway
                    self.flush()
            if mlflow.active_run() is not None and mlflow.active_run().info.run_id == run_id:
                mlflow.end_run(status=status)

    def _start(
        self,
        stage: str,
        name: str,
        tags: dict[str, str],
        active: Any,
        resume: bool,
        parent_run_id: str | None,
    ) -> tuple[Any, bool]:
        """Open the run ``run`` describes; True when it was created with ``tags``."""
        previous = self._previous(stage, tags.get(CONFIG_HASH)) if resume else None
        if previous is not None and active is None and not self.inside_project:
            self.fail_dead_children(previous)
            return mlflow.start_run(run_id=previous), False
        if parent_run_id is not None and active is None:
            parent = self.client.get_run(parent_run_id)
            started = mlflow.start_run(
                experiment_id=parent.info.experiment_id,
                run_name=name,
                tags={**tags, "mlflow.parentRunId": parent_run_id},
            )
        elif active is None and not self.inside_project:
            started = mlflow.start_run(
                experiment_id=self._experiment_id(), run_name=name, tags=tags
            )
            if resume:
                return self._join_earliest(stage, tags.get(CONFIG_HASH), started)
        elif active is not None:  # a child lives in its parent's experiment
            started = mlflow.start_run(
                experiment_id=active.info.experiment_id, nested=True, run_name=name, tags=tags
            )
        else:  # the run `mlflow run` opened (MLFLOW_RUN_ID)
            return mlflow.start_run(run_name=name), False
        return started, True

    def confirm_claim(self) -> None:
        """Settle the active run's claim, if it is one and not yet settled.

        Raises CellTaken if another live run holds the same config hash and won.
        """
        run = mlflow.active_run()
        claim = self._claims.get(run.info.run_id) if run is not None else None
        if claim is None:
            return
        self._claims[run.info.run_id] = None
        stage, config_hash = claim
        remote = self.uri.startswith(("http://", "https://"))
        settle = CLAIM_SETTLE_S if remote else LOCAL_CLAIM_SETTLE_S
        self._settle(run.info.start_time / 1000 + settle)
        if not self._won(stage, config_hash, run.info.run_id):
            raise CellTaken(config_hash)

    @property
    def experiment(self) -> str:
        """The experiment's name: ``--experiment``, else $MLFLOW_EXPERIMENT_NAME, else
        MLflow's ``Default`` (where ``mlflow run`` puts runs: every door, one experiment)."""
        return experiment_name(self.cfg.experiment)

    def _experiment_id(self) -> str:
        """The id of the experiment, created if missing (safe when two processes race)."""
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return self.client.create_experiment(self.experiment)
        except mlflow.exceptions.MlflowException:  # created meanwhile by another process
            experiment = self.client.get_experiment_by_name(self.experiment)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _join_earliest(
        self, stage: str, config_hash: str | None, started: Any
    ) -> tuple[Any, bool]:
        """Two processes started the same sweep at once: all join the earliest run."""
        runs = self.client.search_runs(
            [started.info.experiment_id],
            f"tags.`{STAGE}` = '{stage}' and tags.`{CONFIG_HASH}` = '{config_hash}'",
        )
        first = min(runs, key=lambda r: (r.info.start_time, r.info.run_id), default=None)
        if first is None or first.info.run_id == started.info.run_id:
            return started, True
        mlflow.end_run(status=RunStatus.to_string(RunStatus.KILLED))
        self.client.delete_run(started.info.run_id)
        return mlflow.start_run(run_id=first.info.run_id), False

    def _previous(self, stage: str, config_hash: str | None) -> str | None:
        if config_hash is None:
            return None
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is None:
            return None
        runs = self.client.search_runs(
            [experiment.experiment_id],
            f"tags.`{STAGE}` = '{stage}' and tags.`{CONFIG_HASH}` = '{config_hash}'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def fail_dead_children(self, parent_run_id: str) -> list[str]:
        """Mark descendants left RUNNING by a dead process FAILED; return their ids."""
        run = self.client.get_run(parent_run_id)
        children = self.client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'"
        )
        failed = []
        for child in children:
            failed += self.fail_dead_children(child.info.run_id)
            if child.info.status == "RUNNING" and not is_alive(child):
                self.client.set_terminated(child.info.run_id, status="FAILED")
                failed.append(child.info.run_id)
        return failed

    def finished_hashes(self, stage: str) -> set[str]:
        """The config hashes of every FINISHED run of ``stage`` in the store (paged)."""
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        hashes: set[str] = set()
        token = None
        while True:
            page = self.client.search_runs(
                experiments,
                f"tags.`{STAGE}` = '{stage}' and attributes.status = 'FINISHED'",
                max_results=1000,
                page_token=token,
            )
            hashes |= {r.data.tags.get(CONFIG_HASH, "") for r in page}
            token = page.token
            if not token:
                return hashes

    def claimable(self, stage: str, config_hash: str) -> bool:
        """No FINISHED run and no live RUNNING run holds this hash (dead ones -> FAILED)."""
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(
            experiments,
            f"tags.`{STAGE}` = '{stage}' and tags.`{CONFIG_HASH}` = '{config_hash}'",
        )
        runs = [r for r in runs if r.info.status in ("FINISHED", "RUNNING")]
        if any(r.info.status == "FINISHED" for r in runs):
            return False
        for run in runs:
            if is_alive(run):
                return False
            self.fail_dead_children(run.info.run_id)
            self.client.set_terminated(run.info.run_id, status="FAILED")
        return True

    def running(self, stage: str, config_hash: str) -> list[Any]:
        """Live RUNNING runs of ``stage`` with this hash; dead ones are marked FAILED."""
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(
            experiments,
            f"tags.`{STAGE}` = '{stage}' and tags.`{CONFIG_HASH}` = '{config_hash}'"
            " and attributes.status = 'RUNNING'",
        )
        live = []
        for run in runs:
            if is_alive(run):
                live.append(run)
            else:
                self.fail_dead_children(run.info.run_id)
                self.client.set_terminated(run.info.run_id, status="FAILED")
        return live

    def _settle(self, until: float) -> None:
        """Sleep until the unix time ``until`` (what is left of a claim's settle time)."""
        time.sleep(max(0.0, until - time.time()))

    def _won(self, stage: str, config_hash: str, run_id: str) -> bool:
        """Of the live runs holding a hash, the earliest started (then lowest id) wins.

        start_time is stamped by the client before its request reaches the store, so a
        run stamped earlier may become visible later: ``confirm_claim`` waits until
        CLAIM_SETTLE_S after the start first, so all contenders see the same set and
        elect the same run. A prune cell that some run already FINISHED (while this
        worker stalled between its check and its claim) is lost too.
        """
        if stage == "prune" and self.find_finished(stage, config_hash) is not None:
            return False
        live = self.running(stage, config_hash)
        if not live:  # our own run must be visible; if not, be safe and yield
            return False
        first = min(live, key=lambda r: (r.info.start_time, r.info.run_id))
        return first.info.run_id == run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params in one batch, skipping keys already set (e.g. by `mlflow run -P`).

        Values are written as ``mlbench.options.param_text`` spells them, the text
        ``mlflow run`` logs for the MLproject's defaults, so every door writes the same.
        """
        run = mlflow.active_run()
        existing = run.data.params
        if self.inside_project or existing:  # `mlflow run` or a reopened run set some
            existing = self.client.get_run(run.info.run_id).data.params
        texts = {k: param_text(v) for k, v in params.items()}
        warn_differing_text(existing, texts)
        fresh = [Param(k, v) for k, v in texts.items() if k not in existing]
        for start in range(0, len(fresh), 100):
            self.client.log_batch(run.info.run_id, params=fresh[start : start + 100])

    def log_datasets(self, splits: Iterable[Any], data_digest: str) -> None:
        """The run's train/val/test splits as MLflow dataset inputs, and their digest tag."""
        run_id = mlflow.active_run().info.run_id
        log_datasets(self.client, run_id, splits)
        self.client.set_tag(run_id, DATA_DIGEST, data_digest)

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
        beat = [RunTag(HEARTBEAT, str(time.time()))]  # liveness, in the same request
        if wait:
            self.client.log_batch(run_id, metrics=batch, tags=beat)
            return
        self._sender.send(run_id, batch, beat)

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
            self.client.log_batch(run_id, metrics=batch[start : start + 1000])

    # -- checkpoints --------------------------------------------------------------
    def log_checkpoint(self, path: Path, epoch: int) -> None:
        """Upload a training checkpoint (replacing the last one) and tag its epoch."""
        run_id = mlflow.active_run().info.run_id
        self.client.log_artifact(run_id, str(path), CHECKPOINT_DIR)
        self.client.set_tag(run_id, CHECKPOINT_EPOCH, str(epoch))

    def find_checkpoint(self, stage: str, config_hash: str) -> tuple[str, int] | None:
        """The interrupted run of ``stage`` with this hash that got furthest, and its epoch.

        Only runs whose process is gone count (a dead RUNNING one is marked FAILED
        here); FINISHED runs never do.
        """
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(
            experiments,
            f"tags.`{STAGE}` = '{stage}' and tags.`{CONFIG_HASH}` = '{config_hash}'"
            " and attributes.status != 'FINISHED'",
        )
        active = mlflow.active_run()
        candidates = []
        for run in runs:
            if CHECKPOINT_EPOCH not in run.data.tags or (
                active is not None and run.info.run_id == active.info.run_id
            ):
                continue
            if run.info.status == "RUNNING":
                if is_alive(run):
                    continue
                self.client.set_terminated(run.info.run_id, status="FAILED")
            candidates.append(run)
        best = max(
            candidates,
            key=lambda r: (int(r.data.tags[CHECKPOINT_EPOCH]), r.info.start_time),
            default=None,
        )
        if best is None:
            return None
        return best.info.run_id, int(best.data.tags[CHECKPOINT_EPOCH])

    def mark_resumed(self, from_run_id: str, epoch: int) -> None:
        """Tag the active run as the continuation of ``from_run_id`` after ``epoch``."""
        mlflow.set_tags({RESUMED_FROM: from_run_id, RESUMED_EPOCH: str(epoch)})

    def log_dict(self, data: Any, artifact_file: str) -> None:
        """A JSON artifact."""
        mlflow.log_text(json.dumps(data, indent=2, sort_keys=True, default=str), artifact_file)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload one local file as an artifact of the active run."""
        mlflow.log_artifact(str(path), artifact_path)

    def download(self, run_id: str, artifact: str, *, cache: bool = False) -> Path:
        """Fetch one artifact of a run to a local temp folder; a ConfigError if missing.

        ``cache`` keeps the file for later calls (for artifacts of finished runs, which
        never change, such as a base model's weights).
        """
        if cache and (run_id, artifact) in self._downloads:
            return self._downloads[(run_id, artifact)]
        target = tempfile.mkdtemp(prefix="mlbench-")
        try:
            path = Path(self.client.download_artifacts(run_id, artifact, target))
        except Exception as exc:
            raise ConfigError(f"run {run_id} has no artifact {artifact!r}: {exc}") from None
        if cache:
            self._downloads[(run_id, artifact)] = path
        return path

    # -- base models --------------------------------------------------------------
    def find_base(self, name: str, base_hash: str) -> BaseModel | None:
        """The newest registered version of ``name`` whose base hash matches, if any.

        A base model once found is remembered: a finished run never changes.
        """
        if (name, base_hash) in self._bases:
            return self._bases[(name, base_hash)]
        try:
            versions = self.client.search_model_versions(
                f"name='{name}' and tags.`{BASE_HASH}`='{base_hash}'"
            )
        except mlflow.exceptions.MlflowException:
            versions = []
        for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
            run = self.client.get_run(mv.run_id)
            if run.info.status == "FINISHED":
                found = BaseModel(run_id=mv.run_id, name=name, version=str(mv.version))
                self._bases[(name, base_hash)] = found
                return found
        return None

    def register_base(self, name: str, model: Any, example: Any, base_hash: str) -> str | None:
        """Log ``model`` as an MLflow model of the active run and register it as ``name``.

        Serialized with torch.export (``pt2``, no pickle) so anyone can load it with
        ``mlflow.pytorch.load_model("models:/<name>/<version>")``, or pickled where
        export cannot trace the model; mlbench itself reloads the safetensors weights
        logged beside it and never unpickles.
        """
        if not self.cfg.register:
            return None
        run_id = mlflow.active_run().info.run_id
        # Stated requirements and no serving check (MLflow would load the model back and
        # predict the example): registering costs little beyond writing the weights.
        options = {"name": "model", "pip_requirements": ["torch", "torchvision", "mlbench"],
                   "validate_serving_input": False}
        try:
            info = mlflow.pytorch.log_model(model, input_example=example, **options)
        except Exception:  # noqa: BLE001 - torch.export cannot trace every model
            # Pickled by us; mlbench itself only ever reloads the safetensors weights.
            del options["validate_serving_input"]  # torch.save would get it
            info = mlflow.pytorch.log_model(model, serialization_format="pickle", **options)
        mv = mlflow.register_model(info.model_uri, name, tags={BASE_HASH: base_hash})
        self.client.set_model_version_tag(name, mv.version, "mlbench.run_id", run_id)
        return str(mv.version)

    def describe_base(self, name: str, version: str | None, description: str,
                      alias: str | None = None) -> None:
        """A registered base model's description and its ``seed-N`` alias."""
        if version is not None:
            from mlbench.tracking._registry import describe_version

            describe_version(self.client, name, version, description, alias)

    def log_pruned(self, model: Any, example: Any) -> None:
        """With ``--log-model``: the pruned network as an MLflow model of the active run."""
        if self.cfg.log_model:
            from mlbench.tracking._registry import log_pruned_model

            log_pruned_model(model, example)

    def find_finished(self, stage: str, config_hash: str) -> str | None:
        """The id of a FINISHED run of ``stage`` with this config hash, if any."""
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(
            experiments,
            filter_string=(
                f"tags.`{STAGE}` = '{stage}' and tags.`{CONFIG_HASH}` = '{config_hash}'"
                " and attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        return runs[0].info.run_id if runs else None


def is_alive(run: Any) -> bool:
    """Is the process doing ``run`` alive? Same host: its pid; elsewhere: its heartbeat."""
    host, _, pid = run.data.tags.get(WORKER, ":").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    beat = float(run.data.tags.get(HEARTBEAT, "0") or 0)
    return time.time() - beat < STALE_AFTER_S


def quiet() -> None:
    """Keep stderr for mlbench's own lines: MLflow sets its logger to INFO on import."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
