"""Per-epoch checkpoints: a resumed fit equals an uninterrupted one, bit for bit."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from safetensors import safe_open

from mlbench import checkpoint
from mlbench.config import DataConfig, OptimConfig
from mlbench.data import load_dataset
from mlbench.device import Precision
from mlbench.engine import fit
from mlbench.errors import ConfigError
from mlbench.masks import allocate, load_masks, prunable_parameters
from mlbench.models import classifier_name, create_model
from tests.conftest import REPO, clean_env, tiny_argv

CPU = Precision(torch.device("cpu"), False)
SPLITS = load_dataset(
    DataConfig(dataset="synthetic", synthetic_shape="1x8x8", synthetic_classes=4,
               synthetic_samples=128),
    torch.device("cpu"),
)


def _model_and_masks() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = create_model("lenet", (1, 8, 8), 4)
    prunable = prunable_parameters(model, classifier_name(model))
    scores = {name: p.detach().abs() for name, p in prunable.items()}
    masks = allocate(scores, sum(p.numel() for p in prunable.values()) // 4, "global")
    return model, masks


def _fit(cfg: OptimConfig, ckpt: checkpoint.Checkpointer | None = None,
         stop_after: int | None = None) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """Fit from the same start; ``stop_after`` ends early, as a killed process would."""
    model, masks = _model_and_masks()
    history: list[dict[str, float]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        fit(model, SPLITS.train, SPLITS.val, cfg, generator=torch.Generator().manual_seed(3),
            precision=CPU, masks=masks, on_epoch=lambda e, m: history.append(m),
            epochs=range(1, (stop_after or cfg.epochs) + 1), checkpoint=ckpt)
    return model, history


class Keep:
    """A publish callback that keeps every checkpoint file it is handed."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.files = folder, []

    def __call__(self, path: Path, epoch: int) -> None:
        self.files.append(Path(shutil.copy(path, self.folder / f"epoch{epoch}.safetensors")))


@pytest.mark.parametrize(
    "cfg",
    [
        OptimConfig(epochs=4, batch_size=16, lr=0.05, schedule="cosine", warmup_epochs=1),
        OptimConfig(epochs=4, batch_size=16, lr=0.01, optimizer="adam", schedule="step",
                    step_size=1, gamma=0.5),
    ],
    ids=["sgd-cosine", "adam-step"],
)
def test_resuming_gives_the_same_weights_as_training_straight_through(cfg, tmp_path):
    straight, straight_history = _fit(cfg)
    keep = Keep(tmp_path)
    _fit(cfg, checkpoint.Checkpointer(keep, every_s=0), stop_after=2)
    assert [f.name for f in keep.files] == ["epoch1.safetensors", "epoch2.safetensors"]

    state = checkpoint.load(keep.files[-1])
    assert state.epoch == 2 and len(state.history) == 2
    resumed, resumed_history = _fit(cfg, checkpoint.Checkpointer(keep, every_s=0, resume=state))
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert resumed_history == straight_history[2:]  # only the epochs it ran itself
    assert state.history == straight_history[:2]


def test_no_checkpoint_after_the_last_epoch_and_none_when_not_due(tmp_path):
    cfg = OptimConfig(epochs=3, batch_size=16)
    keep = Keep(tmp_path)
    _fit(cfg, checkpoint.Checkpointer(keep, every_s=0))
    assert [f.name for f in keep.files] == ["epoch1.safetensors", "epoch2.safetensors"]
    rare = Keep(tmp_path)
    _fit(cfg, checkpoint.Checkpointer(rare, every_s=3600))
    never = Keep(tmp_path)
    _fit(cfg, checkpoint.Checkpointer(never, every_s=-1))
    assert rare.files == [] and never.files == []


def test_the_file_is_plain_safetensors_with_json_metadata(tmp_path):
    keep = Keep(tmp_path)
    _fit(OptimConfig(epochs=2, batch_size=16), checkpoint.Checkpointer(keep, every_s=0))
    with safe_open(str(keep.files[0]), framework="pt") as f:
        keys = set(f.keys())
        meta = json.loads(f.metadata()["mlbench"])
    assert {"rng.generator", "rng.torch", "model.conv1.weight"} <= keys
    assert any(k.startswith("optim.") and k.endswith("momentum_buffer") for k in keys)
    assert meta["format"] == checkpoint.FORMAT and meta["epoch"] == 1
    assert meta["scheduler"]["last_epoch"] > 0


def test_a_corrupt_or_foreign_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ConfigError, match="not a readable mlbench checkpoint"):
        checkpoint.load(broken)
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(foreign), metadata={"mlbench": '{"format": "v0"}'})
    with pytest.raises(ConfigError, match="checkpoint format 'v0'"):
        checkpoint.load(foreign)


def _runs(uri: str, stage: str) -> list:
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, f"tags.`mlbench.stage` = '{stage}'")


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["oneshot", "iterative", "gradual"])
def test_a_killed_prune_run_resumes_from_its_last_checkpoint(tmp_path, schedule):
    """kill -9 mid fine-tuning, run the same command again: it continues, not restarts.

    One-shot and gradual fine-tuning checkpoint every epoch here (gradual with the masks
    it changes as it goes: 3 steps, so the kill may land while they still change); an
    iterative schedule (3 rounds of 20 epochs) after every round, and resumes after the
    last round it finished.
    """
    argv = [sys.executable, "-m", "mlbench", "prune", *tiny_argv(epochs=60),
            "--checkpoint-every", "0", "--prune-schedule", schedule, "--prune-rounds", "3"]
    first = 20 if schedule == "iterative" else 2  # the first checkpoint's epoch
    killed_uri = f"sqlite:///{tmp_path / 'killed.db'}"
    straight_uri = f"sqlite:///{tmp_path / 'straight.db'}"
    subprocess.run([*argv, "--tracking-uri", straight_uri], check=True, cwd=REPO,
                   env=clean_env(straight_uri), capture_output=True)

    MlflowClient(killed_uri).search_experiments()  # create the store before polling it
    proc = subprocess.Popen([*argv, "--tracking-uri", killed_uri], cwd=REPO,
                            env=clean_env(killed_uri), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        runs = _runs(killed_uri, "prune")
        if runs and int(runs[0].data.tags.get("mlbench.checkpoint_epoch", 0)) >= first:
            proc.kill()
    proc.wait()
    assert proc.returncode == -9, "the run ended before it could be killed; make it longer"
    (interrupted,) = _runs(killed_uri, "prune")
    reached = int(interrupted.data.tags["mlbench.checkpoint_epoch"])
    assert first <= reached < 60
    if schedule == "iterative":
        assert reached % 20 == 0  # only between rounds

    subprocess.run([*argv, "--tracking-uri", killed_uri], check=True, cwd=REPO,
                   env=clean_env(killed_uri), capture_output=True)
    runs = {r.info.run_id: r for r in _runs(killed_uri, "prune")}
    assert runs[interrupted.info.run_id].info.status == "FAILED"
    (resumed,) = [r for r in runs.values() if r.info.run_id != interrupted.info.run_id]
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["mlbench.resumed_from"] == interrupted.info.run_id
    assert int(resumed.data.tags["mlbench.resumed_epoch"]) >= reached
    curve = MlflowClient(killed_uri).get_metric_history(resumed.info.run_id, "val_acc1")
    assert sorted(m.step for m in curve) == list(range(1, 61))  # copied + its own epochs

    (straight,) = _runs(straight_uri, "prune")
    for key in ("acc1", "acc5", "loss", "pre_acc1", "base_acc1", "compression"):
        assert resumed.data.metrics[key] == straight.data.metrics[key], key
    masks = []  # the same masks, bit for bit
    for uri, run in ((killed_uri, resumed), (straight_uri, straight)):
        folder = tmp_path / run.info.run_id
        folder.mkdir()
        masks.append(load_masks(MlflowClient(uri).download_artifacts(
            run.info.run_id, "masks.safetensors", str(folder))))
    assert masks[0].keys() == masks[1].keys()
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])
    assert resumed.data.params["prune_schedule"] == schedule


def test_a_checkpoint_whose_tensors_do_not_fit_is_set_aside_once_with_one_warning(
        tmp_path, capsys):
    from mlbench.config import TrackingConfig
    from mlbench.resume import checkpointer
    from mlbench.tracking import SET_ASIDE, Tracker, checkpoint_key

    model = create_model("lenet", (1, 8, 8), 4)
    wider = create_model("lenet", (1, 8, 8), 10)  # a changed model definition, say
    assert checkpoint_key("h", model.state_dict()) != checkpoint_key("h", wider.state_dict())
    keep = Keep(tmp_path)
    cfg = OptimConfig(epochs=2, batch_size=16)
    with torch.random.fork_rng(devices=[]):
        fit(wider, SPLITS.train, SPLITS.val, cfg, generator=torch.Generator().manual_seed(3),
            precision=CPU, epochs=range(1, 2), checkpoint=checkpoint.Checkpointer(keep, 0))
    tracker = Tracker(TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}"))
    key = checkpoint_key("h", model.state_dict())  # found under the key of `model`
    with tracker.run("prune", "interrupted") as old:
        named = tmp_path / "up" / checkpoint.FILENAME
        named.parent.mkdir()
        tracker.checkpoints.log(Path(shutil.copy(keep.files[-1], named)), 1, key)
    MlflowClient(tracker.uri).set_terminated(old, "FAILED")  # its worker died
    capsys.readouterr()
    with tracker.run("prune", "next"):
        resumed = checkpointer(tracker, "h", model)
    assert resumed.resume is None  # the cell starts afresh
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "set aside" in lines[0] and "checkpoint has" in lines[0]
    assert SET_ASIDE in MlflowClient(tracker.uri).get_run(old).data.tags
    with tracker.run("prune", "again"):
        assert checkpointer(tracker, "h", model).resume is None
    assert capsys.readouterr().err == ""  # never tried again


def test_a_schedule_sets_aside_a_checkpoint_that_lacks_what_it_resumes_from(tmp_path, capsys):
    """A mid-fine-tuning checkpoint cannot resume rounds, one without masks not a gradual
    run: each is set aside where it is found, before any curve is copied."""
    from mlbench.config import TrackingConfig
    from mlbench.resume import TrackedCheckpoints
    from mlbench.schedules._gradual import holding
    from mlbench.schedules._iterative import between_rounds
    from mlbench.tracking import SET_ASIDE, Tracker, checkpoint_key

    model = create_model("lenet", (1, 8, 8), 4)
    keep = Keep(tmp_path)
    with torch.random.fork_rng(devices=[]):
        fit(copy.deepcopy(model), SPLITS.train, SPLITS.val, OptimConfig(epochs=2, batch_size=16),
            generator=torch.Generator().manual_seed(3), precision=CPU, epochs=range(1, 2),
            checkpoint=checkpoint.Checkpointer(keep, 0))
    tracker = Tracker(TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}"))
    client = MlflowClient(tracker.uri)
    masks = {"fc3.weight": torch.ones_like(model.fc3.weight)}
    for name, open_checkpoints in (
            ("rounds", lambda: TrackedCheckpoints(tracker, "h").open(
                model, holds=between_rounds)),
            ("gradual", lambda: TrackedCheckpoints(tracker, "h").open(
                model, holds=holding({f"mask.{k}": m for k, m in masks.items()})))):
        with tracker.run("prune", f"interrupted-{name}") as old:
            named = tmp_path / name / checkpoint.FILENAME
            named.parent.mkdir()
            shutil.copy(keep.files[-1], named)
            tracker.checkpoints.log(named, 1, checkpoint_key("h", model.state_dict()))
        client.set_terminated(old, "FAILED")
        capsys.readouterr()
        with tracker.run("prune", f"next-{name}") as new:
            assert open_checkpoints().resume is None
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert "set aside" in line
        assert SET_ASIDE in client.get_run(old).data.tags
        assert not client.get_metric_history(new, "val_acc1")  # no curve copied
