"""Prunable set, allocation, apply and the masks file."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlbench.errors import ConfigError
from mlbench.masks import (
    allocate,
    apply_masks,
    keep_count,
    load_masks,
    prunable_parameters,
    save_masks,
)
from mlbench.models import classifier_name, create_model


def test_prunable_set_is_conv_and_linear_weights_without_the_classifier():
    model = create_model("resnet20", (3, 32, 32), 10)
    names = prunable_parameters(model, classifier_name(model))
    assert "conv1.weight" in names and "layer3.2.conv2.weight" in names
    assert "fc.weight" not in names
    assert not any("bn" in n or n.endswith("bias") for n in names)
    assert len(names) == 19  # 1 stem conv + 9 blocks x 2 convs
    assert "fc.weight" in prunable_parameters(model, None)


def test_keep_count_counts_all_parameters():
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))  # 110 + 22 = 132 params
    prunable = prunable_parameters(model, "1")
    assert keep_count(model, prunable, 2.0) == 66 - 32  # round(132/2) minus dense ones
    assert keep_count(model, prunable, 1.0) == 100


@pytest.mark.parametrize("compression", [0.5, 5.0, 1000.0])
def test_unreachable_compression_is_a_config_error(compression):
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    prunable = prunable_parameters(model, "1")
    with pytest.raises(ConfigError, match=r"--compression .* allows 1 to 4\.0"):
        keep_count(model, prunable, compression)


def test_layer_allocation_rounds_to_the_exact_total():
    scores = {"a": torch.rand(7), "b": torch.rand(5), "c": torch.rand(3)}
    masks = allocate(scores, 8, "layer")
    assert sum(int(m.sum()) for m in masks.values()) == 8
    for m in masks.values():  # each tensor within one weight of 8/15 of it
        assert abs(int(m.sum()) - 8 / 15 * m.numel()) < 1


def test_global_allocation_breaks_ties_stably():
    scores = {"a": torch.ones(4), "b": torch.ones(4)}
    masks = allocate(scores, 3, "global")
    assert masks["a"].tolist() == [True, True, True, False]
    assert not masks["b"].any()


def test_apply_masks_zeroes_pruned_weights(lenet, prunable):
    masks = {n: torch.rand(p.shape) > 0.5 for n, p in prunable.items()}
    apply_masks(lenet, masks)
    params = dict(lenet.named_parameters())
    assert all(torch.count_nonzero(params[n][~m]) == 0 for n, m in masks.items())


def test_masks_round_trip_without_pickle(tmp_path, prunable):
    masks = {n: torch.rand(p.shape) > 0.3 for n, p in prunable.items()}
    path = tmp_path / "masks.safetensors"
    save_masks(masks, path, {"strategy": "random"})
    loaded = load_masks(path)
    assert set(loaded) == set(masks)
    assert all(torch.equal(loaded[n], masks[n]) for n in masks)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle stream


def test_a_corrupt_masks_file_is_a_config_error(tmp_path):
    path = tmp_path / "masks.safetensors"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(ConfigError, match="not a readable masks file"):
        load_masks(path)
