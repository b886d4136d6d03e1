"""Post-training methods against hand computations, and the facts the papers rest on."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mlbench.calibrated import (
    Target,
    calibration_inputs,
    capture,
    hessian,
    layer_mask,
    nm_mask,
    prunable_linears,
    prune_post_training,
    prune_units,
    rebuild,
    remove_heads,
    remove_neurons,
    row_mask,
    sparsegpt,
    wanda_scores,
)
from mlbench.config import DataConfig
from mlbench.data import load_dataset
from mlbench.data._text import decode
from mlbench.models import create_model
from tests.test_text_data import write_corpus


def tiny_gpt(vocab: int = 13, seq_len: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return create_model("chargpt", (seq_len,), vocab).eval()


def test_wanda_scores_and_row_mask_by_hand():
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
    x = torch.tensor([[1.0, 2.0], [2.0, 0.0]])  # tokens: column norms sqrt(5) and 2
    stats = capture(nn.Sequential(layer), {"l": layer}, x)["l"]
    assert torch.allclose(stats.norms(), torch.tensor([math.sqrt(5), 2.0], dtype=torch.float64))
    scores = wanda_scores(layer.weight, stats.norms())
    expected = torch.tensor([[math.sqrt(5), 4.0], [3 * math.sqrt(5), 1.0]])
    assert torch.allclose(scores, expected)
    # per output row: row 0 keeps its second weight, row 1 its first
    assert row_mask(scores, 0.5).tolist() == [[False, True], [True, False]]
    # magnitude alone, one threshold per layer: the two smallest |W| go (0.5 and 1)
    assert layer_mask(layer.weight.abs(), 0.5).tolist() == [[False, True], [True, False]]
    assert layer_mask(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 0.5).tolist() == [
        [False, False], [True, True]]


def test_sparsegpt_update_is_the_obs_update_by_hand():
    x = torch.tensor([[1.0, 0.8], [0.5, 0.9], [-1.0, -0.4], [0.2, 0.1]], dtype=torch.float64)
    w = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    h = hessian(x)
    new, mask = sparsegpt(w, h, sparsity=0.5, percdamp=0.01)
    hd = h + 0.01 * torch.diag(h).mean() * torch.eye(2, dtype=torch.float64)
    det = torch.linalg.det(hd)
    # scores w_j^2 / [chol(H^-1)]_jj^2: [H^-1]_00 = H11/det for column 0, 1/H11 for column 1
    s0, s1 = w[0, 0] ** 2 / (hd[1, 1] / det), w[0, 1] ** 2 * hd[1, 1]
    assert s0 < s1 and mask.tolist() == [[False, True]]
    # OBS: removing w0 moves w1 by w0 * H01 / H11
    assert new[0, 0] == 0
    assert new[0, 1].item() == pytest.approx((w[0, 1] + w[0, 0] * hd[0, 1] / hd[1, 1]).item())


def test_sparsegpt_reconstructs_better_than_magnitude_at_half():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(32, 32, generator=g)
    x = torch.randn(512, 32, generator=g) @ mix  # correlated inputs, as real activations are
    w = torch.randn(16, 32, generator=g)

    def error(pruned: torch.Tensor) -> float:
        return float(((w - pruned) @ x.T).pow(2).sum())

    new, mask = sparsegpt(w, hessian(x), sparsity=0.5)
    assert int((~mask).sum()) == w.numel() // 2 and bool((new[~mask] == 0).all())
    magnitude = w * layer_mask(w.abs(), 0.5)
    assert error(new) < error(magnitude)
    assert error(new) < 0.8 * error(w * mask)  # the update, not only the mask, helps


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("nm", [(2, 4), (4, 8)])
def test_nm_masks_keep_exactly_n_of_every_m(method, nm):
    model = tiny_gpt()
    calib = torch.randint(0, 13, (8, 16), generator=torch.Generator().manual_seed(1))
    masks = prune_post_training(model, method, Target(nm=nm), calib)
    layers = prunable_linears(model)
    assert set(masks) == {f"{n}.weight" for n in layers}
    n, m = nm
    for name, layer in layers.items():
        mask = masks[f"{name}.weight"]
        groups = mask.reshape(mask.shape[0], -1, m).sum(2)
        assert bool((groups == n).all())
        assert bool((layer.weight[~mask] == 0).all())
        assert int((layer.weight != 0).sum()) <= mask.sum()


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_unstructured_target_hit_in_every_layer(method):
    model = tiny_gpt()
    calib = torch.randint(0, 13, (8, 16), generator=torch.Generator().manual_seed(1))
    masks = prune_post_training(model, method, Target(sparsity=0.5), calib)
    for mask in masks.values():
        assert int((~mask).sum()) == mask.numel() // 2
    if method == "wanda":  # per output row
        assert all(bool(((~m).sum(1) == m.shape[1] // 2).all()) for m in masks.values())


def test_nm_mask_by_hand():
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.0, 9.0, 8.0, 7.0]])
    assert nm_mask(scores, 2, 4).tolist() == [[True, False, True, False,
                                               False, True, True, False]]
    with pytest.raises(ValueError, match="groups of 3"):
        nm_mask(scores, 1, 3)


def test_removing_zeroed_heads_and_neurons_keeps_outputs_and_shrinks():
    model = tiny_gpt()
    x = torch.randint(0, 13, (3, 16), generator=torch.Generator().manual_seed(2))
    block = model.blocks[0]
    d = block.attn.head_dim
    with torch.no_grad():
        block.attn.proj.weight[:, 1 * d:2 * d] = 0  # head 1 contributes nothing
        block.mlp.out.weight[:, [0, 5, 7]] = 0  # nor do neurons 0, 5, 7
        before = model(x)
    params = sum(p.numel() for p in model.parameters())
    remove_heads(block.attn, [0, 2, 3])
    remove_neurons(block.mlp, [j for j in range(4 * 64) if j not in (0, 5, 7)])
    with torch.no_grad():
        after = model(x)
    assert torch.allclose(before, after, atol=1e-5)
    assert block.attn.heads == 3 and block.attn.q.out_features == 3 * d
    assert block.mlp.fc.out_features == 4 * 64 - 3
    removed = 3 * (64 * d + d) + 64 * d + 3 * (64 + 1 + 64)  # q, k, v rows, proj columns; fc, out
    assert sum(p.numel() for p in model.parameters()) == params - removed


@pytest.mark.parametrize("unit", ["heads", "neurons"])
def test_prune_units_builds_a_smaller_network_that_rebuilds(unit):
    model = tiny_gpt()
    calib = torch.randint(0, 13, (8, 16), generator=torch.Generator().manual_seed(1))
    dense = sum(p.numel() for p in model.parameters())
    kept = prune_units(model, unit, 0.5, calib)
    assert sum(p.numel() for p in model.parameters()) < dense
    sizes = [len(k) for k in kept.values()]
    assert sizes == ([2, 2] if unit == "heads" else [128, 128])
    again = rebuild(tiny_gpt(), unit, kept)
    again.load_state_dict(model.state_dict())
    x = calib[:2]
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_calibration_set_comes_from_train_only_and_is_seeded(tmp_path):
    works = write_corpus(tmp_path)
    splits = load_dataset(DataConfig(dataset="text", data_dir=str(tmp_path), seq_len=8),
                          torch.device("cpu"))
    calib = calibration_inputs(splits.train, 64, 12, seed=3)
    assert calib.shape == (64, 12)
    seen = set(decode(calib.flatten(), splits.info.vocab))
    held_out = {works[w][0] for w in (*splits.val.works, *splits.test.works)}
    train_marks = {works[w][0] for w in splits.train.works}
    assert seen & held_out == set() and seen & train_marks
    assert torch.equal(calib, calibration_inputs(splits.train, 64, 12, seed=3))
    assert not torch.equal(calib, calibration_inputs(splits.train, 64, 12, seed=4))
    digits = load_dataset(DataConfig(dataset="digits"), torch.device("cpu"))
    images = calibration_inputs(digits.train, 32, 0, seed=0)
    train_x = torch.cat([x for x, _ in digits.train.batches(512)])
    test_x = torch.cat([x for x, _ in digits.test.batches(512)])
    for img in images:
        assert bool((train_x == img).flatten(1).all(1).any())
        assert not bool((test_x == img).flatten(1).all(1).any())
