"""Channel pruning with Torch-Pruning on every registered model: forward, counts, reload."""

from __future__ import annotations

import json

import pytest
import torch
import torch_pruning as tp
from safetensors.torch import save_file
from torch import nn

from mlbench.errors import ConfigError
from mlbench.metrics import _module_macs
from mlbench.models import classifier_name, create_model, model_names
from mlbench.structured import (
    channel_sizes,
    channel_strategy_names,
    describe,
    load_channel_pruned,
    prune_channels,
)
from mlbench.structured._graph import dependency_graph

SHAPES = {"lenet": (1, 16, 16), "lenet5_caffe": (1, 16, 16), "mlp": (1, 8, 8),
          "vgg11_bn": (3, 32, 32), "vgg16_bn": (3, 32, 32)}
STRATEGIES = channel_strategy_names()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids OpenMP waits on a loaded 2-core machine (3x faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name: str, shape: tuple[int, int, int]) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, shape, 4)
    with torch.no_grad():  # trained-looking BatchNorm scales, so every criterion ranks
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.1, 1.0)
    return model


def batches(shape: tuple[int, int, int]) -> list:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(4, *shape, generator=g), torch.randint(0, 4, (4,), generator=g))]


def strategy_for(name: str) -> str:
    """Spread the six strategies over the models (networks without BatchNorm: L1 / Taylor)."""
    i = model_names().index(name)
    if name in ("lenet", "lenet5_caffe", "mlp"):
        return ("global_l1_channel", "layer_taylor_channel")[i % 2]
    return STRATEGIES[i % len(STRATEGIES)]


TRANSFORMERS = ("chargpt", "vit")  # heads and neurons: the calibrated kind's unit removal


@pytest.mark.parametrize("name", [n for n in model_names() if n not in TRANSFORMERS])
def test_channel_pruned_model_runs_has_predicted_counts_and_reloads_bit_exact(name, tmp_path):
    shape = SHAPES.get(name, (3, 4, 4))
    model = build(name, shape)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    strategy = strategy_for(name)
    pruned = prune_channels(model, strategy, 3.0, shape, classifier_name(model), batches(shape))
    small = pruned.model.eval()
    out = small(torch.randn(2, *shape))
    assert out.shape == (2, 4)  # the classifier keeps every class
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    params = sum(p.numel() for p in small.parameters())
    assert params == pruned.predicted_params
    macs = _module_macs(small, shape)
    for layer, predicted in pruned.predicted_macs.items():
        assert macs[layer] == pytest.approx(predicted), layer
    sizes = channel_sizes(model, small, shape)
    assert sizes["compression"] == pytest.approx(3.0, rel=0.1)
    assert sizes["macs_nz"] == sum(macs.values()) < sizes["macs"]
    # reload: architecture from the JSON description, weights from safetensors
    spec = tmp_path / "structure.json"
    spec.write_text(json.dumps(describe(pruned, name, shape, 4, strategy)))
    weights = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(weights))
    again = load_channel_pruned(spec, weights).eval()
    x = torch.randn(3, *shape)
    assert torch.equal(again(x), small(x))
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in small.state_dict().items())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_channel_strategy_hits_the_target_on_resnet20(strategy):
    model = build("resnet20", (3, 8, 8))
    pruned = prune_channels(model, strategy, 4.0, (3, 8, 8), "fc", batches((3, 8, 8)))
    params = sum(p.numel() for p in pruned.model.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert total / params == pytest.approx(4.0, rel=0.03)
    if strategy.startswith("layer_"):  # the same fraction of every group
        kept = [k / c for k, c in zip(pruned.kept.values(), group_sizes(model), strict=True)]
        assert max(kept) - min(kept) < 0.1


def group_sizes(model: nn.Module) -> list[int]:
    from mlbench.structured._plan import channel_groups

    graph = dependency_graph(model, (3, 8, 8))
    return [g.channels for g in channel_groups(graph, model, "fc")]


def test_option_a_shortcut_is_pruned_exactly():
    """Removing dead channels of both residual streams leaves the function unchanged.

    Stage-1 channel 3 is dead when the stem and every stage-1 block write zero into it;
    stage-2 channel 1 lies in the zero padding and is dead when stage-2 blocks write zero.
    """
    model = build("resnet20", (3, 8, 8)).eval()
    with torch.no_grad():
        for bn in (model.bn1, *(b.bn2 for b in model.layer1)):
            bn.weight[3] = 0.0
            bn.bias[3] = 0.0
        for b in model.layer2:
            b.bn2.weight[1] = 0.0
            b.bn2.bias[1] = 0.0
    x = torch.randn(2, 3, 8, 8)
    expected = model(x)
    graph = dependency_graph(model, (3, 8, 8))
    graph.get_pruning_group(model.conv1, tp.prune_conv_out_channels, [3]).prune()
    graph.get_pruning_group(model.layer2[0].conv2, tp.prune_conv_out_channels, [1]).prune()
    assert model.layer2[0].shortcut.in_channels == 15
    assert model.layer2[0].shortcut.out_channels == 31
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_depthwise_and_grouped_convs_of_torchvision_models_come_out_right():
    model = create_model("mobilenet_v3_small", (3, 32, 32), 4)
    pruned = prune_channels(model, "global_l1_channel", 1.5, (3, 32, 32),
                            classifier_name(model))
    assert pruned.model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 4)
    assert sum(p.numel() for p in pruned.model.parameters()) == pruned.predicted_params


def test_network_slimming_needs_batchnorm():
    model = build("lenet", (1, 16, 16))
    with pytest.raises(ConfigError, match="BatchNorm"):
        prune_channels(model, "global_bn_channel", 2.0, (1, 16, 16), "fc3")


def test_an_unreachable_target_names_the_reachable_range():
    model = build("mlp", (1, 8, 8))
    with pytest.raises(ConfigError, match="out of reach"):
        prune_channels(model, "global_l1_channel", 1e6, (1, 8, 8), classifier_name(model))
