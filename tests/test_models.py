"""Tests for mlbench.models: a contract over every registered model, plus specifics."""

from __future__ import annotations

import copy
import functools
import io
import warnings

import pytest
import thop
import torch
from torch import nn

from mlbench.errors import ConfigError
from mlbench.models import MODELS, classifier_name, create_model, model_names

LANGUAGE_MODELS = ("chargpt",)  # token windows in, next-token logits out: test_transformers
NAMES = [n for n in model_names() if n not in LANGUAGE_MODELS]
SHAPES = [(1, 28, 28), (3, 32, 32)]  # every registered model must take both
NUM_CLASSES = 7  # unlike any hidden width, so the classifier is unambiguous

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@functools.cache
def _built(name: str, shape: tuple[int, int, int]) -> nn.Module:
    """One shared model per (name, shape) for the tests that only read it."""
    torch.manual_seed(0)
    return create_model(name, shape, NUM_CLASSES)


def test_registered_names_in_order():
    # models register when their module is imported, modules in file-name order
    assert model_names() == [
        "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "vgg11_bn", "vgg16_bn",
        "lenet", "lenet5_caffe", "mlp", "chargpt", "vit",
    ]  # fmt: skip


# --- contract, generated from the registry -------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_output_shape(name, shape):
    model = _built(name, shape)
    assert model.training
    assert model(torch.zeros(2, *shape)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_input_works_or_raises_config_error(name):
    # sklearn digits are 1x8x8: a model either takes them or says so as a ConfigError.
    try:
        model = create_model(name, (1, 8, 8), NUM_CLASSES)
    except ConfigError as exc:
        assert name in str(exc) and "(1, 8, 8)" in str(exc)
    else:
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("name", NAMES)
def test_classifier_name_points_at_the_output_layer(name):
    layer = _built(name, (3, 32, 32)).get_submodule(classifier_name(_built(name, (3, 32, 32))))
    outputs = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    assert outputs == NUM_CLASSES


@pytest.mark.parametrize("name", NAMES)
def test_has_prunable_weights_besides_classifier(name):
    model = _built(name, (3, 32, 32))
    head = classifier_name(model)
    others = [n for n, m in model.named_modules() if isinstance(m, WEIGHTED) and n != head]
    assert others


@pytest.mark.parametrize("name", NAMES)
def test_thop_counts_macs(name):
    model = copy.deepcopy(_built(name, (3, 32, 32))).eval()
    macs, params = thop.profile(model, inputs=(torch.zeros(1, 3, 32, 32),), verbose=False)
    assert macs > 0 and params > 0


@pytest.mark.parametrize("name", NAMES)
def test_construction_is_deterministic_under_seed(name):
    def build(seed):
        torch.manual_seed(seed)
        return create_model(name, (3, 32, 32), NUM_CLASSES).state_dict()

    first, again, other = build(0), build(0), build(1)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("name", NAMES)
def test_create_model_is_silent_and_keeps_batchnorm_stats(name, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = create_model(name, (3, 32, 32), NUM_CLASSES)
    assert capsys.readouterr() == ("", "")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.num_batches_tracked.item() == 0
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))


@pytest.mark.parametrize("name", NAMES)
def test_model_pickles(name):
    # torch.save pickles the module: fails on lambdas (e.g. a lambda shortcut).
    buffer = io.BytesIO()
    torch.save(_built(name, (1, 28, 28)), buffer)
    assert buffer.tell() > 0


# --- registered models, specifics ------------------------------------------------------


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Option A (parameter-free shortcuts), as in He et al. 2016 and ShrinkBench (akamaster):
# 269,722 and 853,018. Projection shortcuts (option B: 1x1 conv + BN where a stage
# starts) would add 2,752 parameters, giving 272,474 and 855,770.
@pytest.mark.parametrize(("name", "count"), [("resnet20", 269_722), ("resnet56", 853_018)])
def test_cifar_resnet_parameter_count(name, count):
    assert _params(create_model(name, (3, 32, 32), 10)) == count


def test_cifar_resnet_shortcuts_have_no_parameters():
    model = create_model("resnet20", (3, 32, 32), 10)
    shortcuts = [m for n, m in model.named_modules() if n.endswith("shortcut")]
    assert len(shortcuts) == 9
    assert all(_params(m) == 0 for m in shortcuts)


def test_lenet_on_digits():
    model = create_model("lenet", (1, 8, 8), 10)
    assert model.fc1.in_features == 16 * 2 * 2
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)


def test_lenet_too_small_input():
    with pytest.raises(ConfigError, match=r"lenet.*\(1, 3, 3\)"):
        create_model("lenet", (1, 3, 3), 10)


def test_cifar_vgg_classifier():
    model = create_model("vgg16_bn", (3, 32, 32), 10)
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512), (512, 10)]
    assert sum(isinstance(m, nn.Conv2d) for m in model.features) == 13
    layers = list(model.features)
    after_conv = [layers[i + 1] for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert all(isinstance(m, nn.BatchNorm2d) for m in after_conv)


# --- torchvision models ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "head"), [("resnet18", "fc"), ("mobilenet_v2", "classifier.1")])
def test_torchvision_model_with_one_channel(name, head):
    model = create_model(name, (1, 32, 32), 10)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    assert classifier_name(model) == head


def test_channel_adaptation_keeps_every_other_weight():
    torch.manual_seed(0)
    rgb = create_model("resnet18", (3, 32, 32), 10).state_dict()
    torch.manual_seed(0)
    gray = create_model("resnet18", (1, 32, 32), 10).state_dict()
    assert gray["conv1.weight"].shape == (64, 1, 7, 7)
    assert torch.equal(gray["conv1.weight"], rgb["conv1.weight"][:, :1])
    assert all(torch.equal(gray[k], rgb[k]) for k in rgb if k != "conv1.weight")


def test_torchvision_classifier_names():
    assert classifier_name(create_model("vgg11", (3, 32, 32), 10)) == "classifier.6"
    assert classifier_name(create_model("squeezenet1_1", (3, 64, 64), 10)) == "classifier.1"


def test_googlenet_is_plain():
    # No aux heads (one tensor out in train mode) and no FutureWarning about init.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = create_model("googlenet", (3, 32, 32), 10)
    out = model(torch.zeros(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_registered_name_shadows_torchvision():
    # torchvision's vgg16_bn has a 4096-wide head; the registered CIFAR one does not.
    assert classifier_name(create_model("vgg16_bn", (3, 32, 32), 10)) == "classifier.2"


# --- errors ------------------------------------------------------------------------------


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError) as info:
        create_model("resnet21", (3, 32, 32), 10)
    message = str(info.value)
    assert "'resnet21'" in message and "\n" not in message
    assert all(name in message for name in NAMES)
    assert "torchvision" in message


def test_input_too_small_for_model():
    with pytest.raises(ConfigError, match=r"inception_v3.*\(3, 32, 32\)") as info:
        create_model("inception_v3", (3, 32, 32), 10)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("shape", [(32, 32), (3, 0, 32), (3, 32.0, 32)])
def test_bad_input_shape(shape):
    with pytest.raises(ConfigError, match="input shape"):
        create_model("lenet", shape, 10)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5])
def test_bad_num_classes(num_classes):
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("lenet", (1, 28, 28), num_classes)


def test_duplicate_registration_raises():
    before = model_names()
    with pytest.raises(ValueError, match="lenet"):
        MODELS.register("lenet")(lambda input_shape, num_classes: nn.Linear(1, 1))
    assert model_names() == before
