"""Issue 19, point 2: pruning at initialization as published, and its sanity checks."""

from __future__ import annotations

import pytest
import torch
from mlflow import MlflowClient

from mlbench.at_init import shuffled, synflow_rounds
from mlbench.cli import main
from mlbench.config import RunConfig
from mlbench.masks import allocate, keep_count, load_masks, prunable_parameters
from mlbench.recipe import prepare
from mlbench.setup import score_batches
from mlbench.strategies import STRATEGIES
from tests.conftest import TINY, tiny_argv


def test_an_at_init_run_scores_the_seeded_init_before_any_training(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    over = {"strategy": "snip", "prune_at": "init", "base_epochs": 2, "speed_repeats": 0}
    assert main(["prune", *tiny_argv(**over), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                "tags.`mlbench.stage` = 'prune'")
    assert run.data.params["prune_at"] == "init"
    assert run.data.metrics["train_epochs_total"] == 2  # from scratch, the base budget
    assert [h.step for h in client.get_metric_history(run.info.run_id, "val_acc1")] == [1, 2]
    logged = load_masks(client.download_artifacts(run.info.run_id, "masks.safetensors",
                                                  str(tmp_path)))
    # the same masks from SNIP on a freshly seeded model: what base training starts from
    setup = prepare(RunConfig.from_flat({**TINY, **over}))
    scores = STRATEGIES.get("snip")(setup.model, setup.prunable, score_batches(setup),
                                    torch.Generator().manual_seed(0))
    keep = keep_count(setup.model, setup.prunable, setup.cfg.prune.compression)
    expected = allocate(scores, keep, "global")
    assert all(torch.equal(logged[n], expected[n].cpu()) for n in expected)


def test_synflow_as_published_prunes_in_rounds_to_the_exact_target(lenet, batches):
    prunable = prunable_parameters(lenet, "fc3")
    keep = keep_count(lenet, prunable, 8.0)
    before = {k: v.clone() for k, v in lenet.state_dict().items()}
    many = synflow_rounds(lenet, list(prunable), keep, 100, batches)
    once = synflow_rounds(lenet, list(prunable), keep, 1, batches)
    assert sum(int(m.sum()) for m in many.values()) == keep
    one_shot = allocate(STRATEGIES.get("synflow")(lenet, prunable, batches, torch.Generator()),
                        keep, "global")
    assert all(torch.equal(once[n], one_shot[n]) for n in once)  # 1 round = one shot
    assert any(not torch.equal(many[n], once[n]) for n in many)  # rounds change the masks
    assert all(torch.equal(v, lenet.state_dict()[k]) for k, v in before.items())


def test_a_layer_shuffle_keeps_each_layers_count_and_moves_its_weights():
    mask = torch.zeros(40, 30, dtype=torch.bool)
    mask[:10] = True
    out = shuffled(mask, torch.Generator().manual_seed(0))
    assert out.shape == mask.shape and int(out.sum()) == int(mask.sum())
    assert not torch.equal(out, mask)


@pytest.mark.parametrize(("over", "words"), [
    ({"strategy": "global_l1_channel", "prune_at": "init"}, "applies to unstructured"),
    ({"prune_at": "init", "prune_schedule": "gradual"}, "prunes once, before training"),
    ({"init_check": "layer_shuffle"}, "needs --prune-at init"),
])
def test_at_init_settings_that_cannot_run_are_refused_before_any_work(tmp_path, capsys, over,
                                                                      words):
    code = main(["prune", *tiny_argv(**over), "--tracking-uri",
                 f"sqlite:///{tmp_path / 'm.db'}"])
    assert code == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists()


def test_findings_judge_the_layer_shuffle_check_paired_by_seed():
    import pandas as pd

    from mlbench.report.findings._at_init import at_init_layer_shuffle_does_not_hurt
    from mlbench.report.findings._core import CONTRADICTED, SUPPORTED, Context
    from mlbench.report.frame import at_init_suffix

    assert at_init_suffix({"prune_at": "init", "init_check": "layer_shuffle"}) == (
        "+init+layer_shuffle")
    assert at_init_suffix({"prune_at": "trained"}) == at_init_suffix({}) == ""

    def panel(shuffle_cost: float) -> pd.DataFrame:
        rows = []
        for seed in range(5):
            for c in (4, 8, 16):
                acc = 0.95 - 0.01 * c + 0.002 * seed
                for suffix, delta in (("+init", 0.0), ("+init+layer_shuffle", -shuffle_cost)):
                    rows.append({"dataset": "mnist", "model": "lenet", "seed": seed,
                                 "compression": c, "strategy": f"snip{suffix}",
                                 "acc1": acc + delta + 0.0004 * ((seed * c) % 3)})
        return pd.DataFrame(rows)

    ctx = Context()
    same = at_init_layer_shuffle_does_not_hurt(panel(0.0), ctx)
    assert same.verdict == SUPPORTED and len(same.comparisons) == 3
    assert same.scope == "mnist / lenet"
    assert at_init_layer_shuffle_does_not_hurt(panel(0.05), ctx).verdict == CONTRADICTED
