"""What the numbers mean: accuracy, size and operation counts (DESIGN.md, Definitions).

- acc1 / acc5: correct / samples over the whole split, top-k capped at the class count.
- params counts every parameter; params_nz those the masks keep; compression = ratio.
- MACs: thop's multiply-accumulates for one sample; FLOPs = 2 x MACs; macs_nz scales
  each layer's MACs by the density of its weight; speedup = macs / macs_nz.
- Attention: thop sees modules, not ``F.scaled_dot_product_attention``; the transformers
  call it through a leaf module whose rule here counts its two matmuls, q kᵀ and the
  weights times v: B·H·Tq·Tk·(D + Dv) MACs, the whole Tq x Tk square even when causal (as
  torch.utils.flop_counter counts it; the math kernel computes it all). They hold no
  weight, so they stay dense in macs_nz.
- The paper's and ShrinkBench's convention, beside them: the same counts over the
  Conv*d and Linear layers only (the classifier included, dense; BatchNorm, pooling
  and activations left out): macs_conv_linear, macs_conv_linear_nz, speedup_conv_linear.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mlbench.models._transformer import ScaledDotProductAttention

OPS_CONVENTION = (
    "MACs: thop multiply-accumulates of one forward pass on one sample; FLOPs = 2 x MACs; "
    "macs_nz scales each layer's MACs by its weight density; speedup = macs / macs_nz; "
    "*_conv_linear: the same over Conv*d and Linear layers only (ShrinkBench's and the "
    "paper's convention); attention: q k^T and weights x v, B*H*Tq*Tk*(D + Dv) MACs, the "
    "whole square even when causal"
)

CONV_LINEAR_TYPES = ("Conv1d", "Conv2d", "Conv3d", "Linear")


def topk_correct(logits: Tensor, targets: Tensor, ks: tuple[int, ...] = (1, 5)) -> Tensor:
    """Number of samples whose target is among the top-k logits, for each k (a tensor).

    k is capped at the number of classes. Counts stay on the device, so callers can
    sum them over a split and synchronize once.
    """
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # (B, kmax)
    hits = top.eq(targets.view(-1, 1))
    return torch.stack([hits[:, : min(k, kmax)].any(dim=1).sum() for k in ks])


def param_counts(model: nn.Module, masks: Mapping[str, Tensor]) -> dict[str, float]:
    """``params`` (all of them), ``params_nz`` (kept by the masks) and ``compression``."""
    params = sum(p.numel() for p in model.parameters())
    pruned = sum(int((~m.bool()).sum()) for m in masks.values())
    params_nz = params - pruned
    return {"params": params, "params_nz": params_nz, "compression": params / params_nz}


def layer_table(
    model: nn.Module, masks: Mapping[str, Tensor], input_shape: tuple[int, ...]
) -> list[dict[str, object]]:
    """One row per leaf module with parameters or MACs.

    Columns: name, type, shape (of its weight), params, nonzero, density, macs, macs_nz.
    MACs come from thop on a deep copy (thop leaves buffers on what it profiles and
    switches train/eval), one sample of ``input_shape``.
    """
    macs = _module_macs(model, input_shape)
    rows = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue
        params = sum(p.numel() for p in module.parameters(recurse=False))
        if params == 0 and macs.get(name, 0) == 0:
            continue
        weight = getattr(module, "weight", None)
        mask = masks.get(f"{name}.weight")
        weight_n = weight.numel() if isinstance(weight, Tensor) else 0
        pruned = int((~mask.bool()).sum()) if mask is not None else 0
        density = (weight_n - pruned) / weight_n if weight_n else 1.0
        rows.append(
            {
                "name": name,
                "type": type(module).__name__,
                "shape": "x".join(map(str, weight.shape)) if isinstance(weight, Tensor) else "",
                "params": params,
                "nonzero": params - pruned,
                "density": density,
                "macs": macs.get(name, 0),
                "macs_nz": macs.get(name, 0) * density,
            }
        )
    return rows


def size_and_ops(
    model: nn.Module, masks: Mapping[str, Tensor], input_shape: tuple[int, ...]
) -> tuple[dict[str, float], list[dict[str, object]]]:
    """The final size/ops metrics of DESIGN.md and the per-layer table they sum."""
    rows = layer_table(model, masks, input_shape)
    metrics = param_counts(model, masks)
    mac = sum(int(r["macs"]) for r in rows)
    mac_nz = sum(float(r["macs_nz"]) for r in rows)
    metrics.update(
        macs=mac,
        macs_nz=mac_nz,
        flops=2 * mac,
        flops_nz=2 * mac_nz,
        speedup=mac / mac_nz if mac_nz else float("inf"),
    )
    metrics.update(conv_linear_ops(rows))
    return metrics, rows


def conv_linear_ops(rows: list[dict[str, object]]) -> dict[str, float]:
    """The paper's convention from a ``layer_table``: MACs of Conv*d and Linear layers only.

    ShrinkBench counts only these layers (its metrics/flops.py), so BatchNorm, pooling
    and activations, which stay dense, do not dilute the speedup: ResNet-20 at 4x with a
    layer strategy gives 4.09 here against 3.87 over the whole model.
    """
    layers = [r for r in rows if r["type"] in CONV_LINEAR_TYPES]
    mac = sum(int(r["macs"]) for r in layers)
    mac_nz = sum(float(r["macs_nz"]) for r in layers)
    return {
        "macs_conv_linear": mac,
        "macs_conv_linear_nz": mac_nz,
        "speedup_conv_linear": mac / mac_nz if mac_nz else float("inf"),
    }


def smaller_network_ops(dense: nn.Module, pruned_rows: list[dict[str, object]],
                        input_shape: tuple[int, ...]) -> dict[str, float]:
    """The paper's convention for a channel-pruned (smaller dense) network (issue 19).

    ``macs_conv_linear`` counts the dense base's Conv*d and Linear layers,
    ``macs_conv_linear_nz`` the pruned network's own (its ``layer_table`` rows: every
    weight kept), so ``speedup_conv_linear`` means what it means for masked runs.
    """
    dense_ops = conv_linear_ops(layer_table(dense, {}, input_shape))
    mac_nz = conv_linear_ops(pruned_rows)["macs_conv_linear"]
    mac = dense_ops["macs_conv_linear"]
    return {"macs_conv_linear": mac, "macs_conv_linear_nz": mac_nz,
            "speedup_conv_linear": mac / mac_nz if mac_nz else float("inf")}


def attention_macs(q: Tensor, k: Tensor, v: Tensor) -> int:
    """MACs of ``softmax(q kᵀ) v`` on (..., Tq, D) queries, (..., Tk, D) keys and
    (..., Tk, Dv) values: ``q kᵀ`` is Tq·Tk·D per head, the weights times v Tq·Tk·Dv."""
    heads_and_queries = q.shape[:-1].numel()  # B * H * Tq
    return heads_and_queries * k.shape[-2] * (q.shape[-1] + v.shape[-1])


def _count_attention(module: nn.Module, inputs: tuple[Tensor, ...], _output: Tensor) -> None:
    """thop's rule for ``ScaledDotProductAttention`` (a forward hook: adds to total_ops)."""
    module.total_ops += torch.DoubleTensor([attention_macs(*inputs[:3])])


def _module_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """MACs of every leaf module by qualified name, from thop's per-layer tree (with
    mlbench's rule for the attention's matmuls, which thop has none for)."""
    from thop import profile

    clone = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        _, _, tree = profile(
            clone, inputs=(torch.zeros(1, *input_shape),), verbose=False, ret_layer_info=True,
            custom_ops={ScaledDotProductAttention: _count_attention},
        )
    out: dict[str, int] = {}

    def walk(node: dict, prefix: str) -> None:
        for name, (ops, _params, children) in node.items():
            if children:
                walk(children, f"{prefix}{name}.")
            else:
                out[prefix + name] = int(ops)

    walk(tree, "")
    return out
