"""SNIP, GraSP, SynFlow and LAMP against scores computed by hand on tiny networks."""

from __future__ import annotations

import torch
from torch import nn

from mlbench.strategies import STRATEGIES
from mlbench.strategies._modern import GRASP_TEMPERATURE


def score(name: str, model: nn.Module, batches: list) -> dict[str, torch.Tensor]:
    params = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
    return STRATEGIES.get(name)(model, params, batches, torch.Generator().manual_seed(0))


def one_layer() -> tuple[nn.Module, list]:
    """logits = W x, W 2x3, one sample x with label 1."""
    model = nn.Sequential(nn.Linear(3, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]))
    x = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    return model, [(x, torch.tensor([1]))]


def test_snip_is_normalized_weight_times_cross_entropy_gradient():
    model, batches = one_layer()
    w, (x, _) = model[0].weight.detach(), batches[0]
    p = torch.softmax(w @ x[0], 0)
    g = torch.outer(p - torch.tensor([0.0, 1.0], dtype=torch.float64), x[0])  # dCE/dW
    expected = (w * g).abs() / (w * g).abs().sum()
    got = score("snip", model, batches)["0.weight"]
    assert torch.allclose(got, expected, atol=1e-12)
    assert got.sum().item() == 1.0 or abs(got.sum().item() - 1) < 1e-12


def test_grasp_is_weight_times_hessian_gradient_product():
    model, batches = one_layer()
    w, (x, _) = model[0].weight.detach(), batches[0]
    t = GRASP_TEMPERATURE
    p = torch.softmax(w @ x[0] / t, 0)
    r = p - torch.tensor([0.0, 1.0], dtype=torch.float64)
    g = torch.outer(r, x[0]) / t  # dL/dW with L = CE(Wx / T)
    curvature = torch.diag(p) - torch.outer(p, p)  # d2 CE / dz2
    hg = torch.outer(curvature @ (g @ x[0] / t), x[0]) / t  # J^T H_z J g
    got = score("grasp", model, batches)["0.weight"]
    assert torch.allclose(got, w * hg, rtol=1e-9, atol=1e-18)


def test_synflow_is_the_path_norm_gradient_of_the_absolute_network():
    model = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]))
        model[1].weight.copy_(torch.tensor([[-2.0, 1.0], [0.5, 3.0]]))
    a1, a2 = model[0].weight.detach().abs(), model[1].weight.detach().abs()
    # R = 1^T |W2| |W1| 1: dR/dW1[i, j] = sum_k |W2|[k, i]; dR/dW2[k, i] = sum_j |W1|[i, j]
    expected1 = a1 * a2.sum(0).unsqueeze(1)
    expected2 = a2 * a1.sum(1).unsqueeze(0)
    got = score("synflow", model, [(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))])
    assert torch.allclose(got["0.weight"], expected1)
    assert torch.allclose(got["1.weight"], expected2)
    assert model[0].weight[0, 1].item() == -1.0  # the model itself is untouched


def test_lamp_divides_each_square_by_the_sum_of_it_and_all_larger_squares():
    model = nn.Sequential(nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -3.0, 2.0]]))
    # squares 1, 9, 4 -> ascending 1, 4, 9 -> 1/14, 4/13, 9/9
    expected = torch.tensor([[1 / 14, 9 / 9, 4 / 13]])
    got = score("lamp", model, [])["0.weight"]
    assert torch.allclose(got, expected)


def test_semi_2_4_keeps_two_of_every_four_at_and_above_its_floor(lenet):
    from mlbench.masks import allocate, keep_count, prunable_parameters
    from mlbench.speed import is_two_four
    from mlbench.strategies import pattern_floor

    prunable = prunable_parameters(lenet, "fc3")
    floor = pattern_floor(lenet, prunable)
    scores = score_of("semi_2_4", lenet, prunable)
    for c in (floor, 2 * floor):
        masks = allocate(scores, keep_count(lenet, prunable, c), "global")
        for name, m in masks.items():
            if m.dim() == 2:  # fc1 and fc2 (in_features 64, 120)
                assert is_two_four(m.float()), name
    w = prunable["fc2.weight"].detach().abs().reshape(-1, 4)
    two = scores["fc2.weight"].reshape(-1, 4) >= 0
    assert (two.sum(1) == 2).all()  # exactly the two largest of each four stay eligible
    assert (w[two].reshape(-1, 2).min(1).values >= w[~two].reshape(-1, 2).max(1).values).all()


def score_of(name, model, prunable):
    return STRATEGIES.get(name)(model, prunable, [], torch.Generator())


def test_semi_structured_kernels_are_refused_with_the_reason_off_cuda():
    import pytest

    from mlbench.speed import SEMI_STRUCTURED_REASON, semi_structured_supported, to_semi_structured

    if semi_structured_supported(torch.device("cuda")) if torch.cuda.is_available() else False:
        pytest.skip("a GPU with 2:4 kernels is here: tests/test_speed.py times them")
    with pytest.raises(RuntimeError, match="compute capability 8.0"):
        to_semi_structured(nn.Linear(64, 64), torch.device("cpu"))
    assert "CUDA" in SEMI_STRUCTURED_REASON
