"""Data parallelism under torchrun (gloo, 2 CPU processes): one process's training, split."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from mlbench.cli import main
from mlbench.device import Precision
from mlbench.distributed import Dist
from mlbench.engine import evaluate, fit
from mlbench.kinds import kind_of
from mlbench.recipe import prepare
from mlbench.setup import generator, score_batches, seeded
from tests._ddp_worker import CFG
from tests.conftest import REPO, TINY, clean_env, tiny_argv

TORCHRUN = str(Path(sys.executable).parent / "torchrun")
TORCHRUN_ARGS = [TORCHRUN, "--standalone", "--nproc_per_node", "2"]


def _torchrun(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**env, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*TORCHRUN_ARGS, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_shards_of_a_batch_cover_it_exactly_once():
    split = prepare(CFG).splits.train
    g = torch.Generator()
    whole = [y for _, y in split.batches(32, shuffle=True, generator=g.manual_seed(1),
                                         drop_last=True)]
    parts = [[y for _, y in split.batches(32, shuffle=True, generator=g.manual_seed(1),
                                          drop_last=True, shard=(rank, 2))] for rank in (0, 1)]
    assert len(parts[0]) == len(parts[1]) == len(whole) > 1
    for i, batch in enumerate(whole):
        merged = torch.stack([parts[0][i], parts[1][i]], dim=1).flatten()  # interleaved
        assert torch.equal(merged, batch)


@pytest.mark.slow
def test_two_ranks_share_masks_and_train_like_one_process(tmp_path):
    done = _torchrun(["tests/_ddp_worker.py", str(tmp_path)], clean_env(""))
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    masks = [k for k in rank0 if k.startswith("mask.")]
    assert masks and all(torch.equal(rank0[k], rank1[k]) for k in masks)  # same masks
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0 if k.startswith("weight."))

    # The same start, one process, the whole batch: what the two ranks should equal
    setup = prepare(CFG)
    setup.model.load_state_dict(load_file(str(tmp_path / "start.safetensors")))
    reference = kind_of(CFG.prune.strategy).prune(setup, score_batches(setup)).masks
    precision = Precision(setup.device, False)
    with seeded(CFG.seed):
        last = fit(setup.model, setup.splits.train, setup.splits.val, CFG.finetune,
                   generator=generator(CFG.seed), precision=precision, masks=reference)
    test = evaluate(setup.model, setup.splits.test, 32, precision)
    assert all(torch.equal(rank0[f"mask.{k}"].bool(), m) for k, m in reference.items())
    for key, value in setup.model.state_dict().items():  # float sums in another order only
        torch.testing.assert_close(rank0[f"weight.{key}"], value, atol=1e-5, rtol=1e-4)
    train_loss, val_acc1, acc1, loss = rank0["metrics"].tolist()
    assert train_loss == pytest.approx(last["train_loss"], rel=1e-4)
    assert val_acc1 == last["val_acc1"] and acc1 == test["acc1"]
    assert loss == pytest.approx(test["loss"], rel=1e-4)


@pytest.mark.slow
def test_torchrun_prune_logs_one_run_from_rank_zero(tmp_path):
    ddp_uri, single_uri = (f"sqlite:///{tmp_path / name}" for name in ("ddp.db", "one.db"))
    MlflowClient(ddp_uri).search_experiments()  # the first user creates the store
    done = _torchrun(["-m", "mlbench", "prune", *tiny_argv(epochs=3),
                      "--tracking-uri", ddp_uri], clean_env(ddp_uri))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("compression=") == 1  # rank 0 alone prints
    assert main(["prune", *tiny_argv(epochs=3), "--tracking-uri", single_uri]) == 0

    client = MlflowClient(ddp_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    stages = sorted(r.data.tags["mlbench.stage"] for r in runs)
    assert stages == ["prune", "train"]  # one run each, not one per rank
    (ddp,) = [r for r in runs if r.data.tags["mlbench.stage"] == "prune"]
    assert len(client.get_metric_history(ddp.info.run_id, "val_acc1")) == 3
    single_client = MlflowClient(single_uri)
    (single,) = single_client.search_runs(
        [e.experiment_id for e in single_client.search_experiments()],
        "tags.`mlbench.stage` = 'prune'")
    # Stated tolerance: the same to within one test sample (float sums in another order).
    one_sample = 1 / len(prepare(CFG).splits.test)
    for key in ("base_acc1", "pre_acc1", "acc1", "acc5"):
        assert abs(ddp.data.metrics[key] - single.data.metrics[key]) <= one_sample, key
    for key in ("compression", "params_nz", "speedup"):
        assert ddp.data.metrics[key] == single.data.metrics[key], key


def test_a_batch_that_does_not_split_over_the_ranks_is_bad_input():
    from mlbench.config import RunConfig
    from mlbench.errors import ConfigError

    cfg = RunConfig.from_flat({**TINY, "batch_size": 33})
    with pytest.raises(ConfigError, match="--batch-size 33 does not split over 2 processes"):
        prepare(cfg, dist=Dist(rank=0, world=2))


@pytest.mark.slow
def test_torchrun_sweep_trains_each_cell_over_both_ranks(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    argv = ["-m", "mlbench", "sweep", "--strategies", "global_weight,random",
            "--compressions", "2", "--seeds", "0", *tiny_argv(epochs=2)[:-2]]  # no --compression
    done = _torchrun([*argv, "--tracking-uri", uri], clean_env(uri))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("sweep done: all 4 items") == 1  # rank 0 alone says it
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    stages = sorted(r.data.tags["mlbench.stage"] for r in runs)
    assert stages == ["prune", "prune", "sweep", "train"]
    (sweep,) = [r for r in runs if r.data.tags["mlbench.stage"] == "sweep"]
    prunes = [r for r in runs if r.data.tags["mlbench.stage"] == "prune"]
    assert all(r.data.tags["mlflow.parentRunId"] == sweep.info.run_id for r in prunes)
    assert all(r.info.status == "FINISHED" for r in runs)
