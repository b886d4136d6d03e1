"""The strategy-kind contract, over every registered kind of pruning.

For each kind (its first strategy, on a tiny real LeNet and synthetic data): ``check``
passes a reachable target and refuses an unreachable one in one line, refuses exactly
the schedules it does not ``runs``; ``prune`` hits the target and leaves pruned weights
at zero; ``sizes`` gives both speedup conventions; ``save`` then ``load`` rebuilds the
very network. And: every strategy belongs to exactly one kind, and a check that can
fail fails before any run or base model exists.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import save_file

from mlbench.calibrated._names import STRATEGY_NAMES as CALIBRATED_STRATEGIES
from mlbench.cli import main
from mlbench.config import RunConfig
from mlbench.errors import ConfigError
from mlbench.kinds import KINDS, Kind, all_strategies, kind_of, to_cpu
from mlbench.recipe import prepare
from mlbench.schedules import SCHEDULES
from mlbench.setup import score_batches
from mlbench.strategies import STRATEGIES
from mlbench.structured import CHANNEL_STRATEGIES
from tests.conftest import TINY, tiny_argv

SIZES = ("params", "params_nz", "compression", "macs", "macs_nz", "flops", "flops_nz",
         "speedup", "macs_conv_linear", "macs_conv_linear_nz", "speedup_conv_linear")


# Kinds that prune only some models, and the model their contract runs on
MODEL_OF = {"calibrated": {"model": "vit", "calib_samples": 16}}  # transformer blocks


def setup_of(kind: Kind, **extra: object):
    strategy = kind.strategies()[0]
    return prepare(RunConfig.from_flat({**TINY, "strategy": strategy,
                                        **MODEL_OF.get(kind.name, {}), **extra}))


@pytest.mark.parametrize("name", KINDS.names())
def test_every_kind_keeps_the_contract(name, tmp_path):
    kind = KINDS.get(name)
    setup = setup_of(kind, compression=2.0)
    dense = {k: v.clone() for k, v in setup.model.state_dict().items()}
    pruned = kind.prune(setup, score_batches(setup))
    sizes, rows = kind.sizes(setup, prepare(setup.cfg).model, pruned)
    assert set(SIZES) <= set(sizes) and rows
    assert sizes["compression"] == pytest.approx(2.0, rel=0.15)
    assert sizes["speedup"] >= 1 and sizes["speedup_conv_linear"] >= 1
    for pname, mask in pruned.masks.items():  # mask kinds: pruned weights exactly zero
        assert (dict(pruned.model.named_parameters())[pname][~mask] == 0).all()
    if not pruned.masks:  # a smaller network: the base model is left untouched
        assert all(torch.equal(v, dense[k]) for k, v in setup.model.state_dict().items())
    info = setup.splits.info
    config = {**setup.cfg.flat(), "input_shape": list(info.input_shape),
              "num_classes": info.num_classes}
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file(to_cpu(pruned.model), str(tmp_path / "weights.safetensors"))
    written = kind.save(pruned, setup, tmp_path, {"strategy": setup.cfg.prune.strategy})
    assert sorted(p.name for p in written) == sorted(kind.files)
    rebuilt = kind.load(tmp_path, config).eval()
    x = torch.randn(3, *info.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), pruned.model.eval()(x))
    assert kind.kernels(setup)


@pytest.mark.parametrize("name", KINDS.names())
def test_every_kind_refuses_in_one_line_what_it_cannot_do(name):
    kind = KINDS.get(name)
    setup = setup_of(kind, compression=2.0)
    for schedule_name in SCHEDULES.names():
        schedule = SCHEDULES.get(schedule_name)
        if kind.runs(schedule):
            kind.check(setup, schedule)
        else:
            with pytest.raises(ConfigError, match=schedule_name) as caught:
                kind.check(setup, schedule)
            assert "\n" not in str(caught.value)
    far = dataclasses.replace(setup, cfg=dataclasses.replace(
        setup.cfg, prune=dataclasses.replace(setup.cfg.prune, compression=1e6)))
    with pytest.raises(ConfigError, match="out of reach") as caught:
        kind.check(far, SCHEDULES.get("oneshot"))
    assert "\n" not in str(caught.value)


def test_every_strategy_belongs_to_exactly_one_kind():
    names = all_strategies()
    assert len(names) == len(set(names))
    assert set(names) == (set(STRATEGIES.names()) | set(CHANNEL_STRATEGIES.names())
                          | set(CALIBRATED_STRATEGIES))
    for strategy in names:
        assert sum(KINDS.get(k).owns(strategy) for k in KINDS) == 1
        assert kind_of(strategy).owns(strategy)
    with pytest.raises(ConfigError, match="unknown strategy 'magic'; choose one of: "
                       "global_weight"):
        kind_of("magic")


def test_network_slimming_on_a_model_without_batchnorm_fails_before_any_work(tmp_path,
                                                                            capsys):
    for strategy in ("global_bn_channel", "layer_bn_channel"):
        code = main(["prune", *tiny_argv(strategy=strategy),
                     "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "needs BatchNorm" in err[0], err
        assert not (tmp_path / "m.db").exists()  # no store, so no run and no base model
