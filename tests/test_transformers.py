"""The transformer models (chargpt, vit) and the engine's language-model metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlbench.calibrated._structured import remove_heads
from mlbench.data._text import TextSplit
from mlbench.engine import evaluate, train_one_epoch
from mlbench.errors import ConfigError
from mlbench.metrics import layer_table, size_and_ops
from mlbench.models import classifier_name, create_model
from mlbench.models._transformer import CharGPT, ViT


def gpt(seq_len: int = 16, vocab: int = 11) -> nn.Module:
    torch.manual_seed(0)
    return create_model("chargpt", (seq_len,), vocab)


def test_chargpt_maps_tokens_to_next_token_logits_with_tied_head():
    model = gpt()
    x = torch.randint(0, 11, (3, 16))
    assert model(x).shape == (3, 16, 11)
    assert model.head.weight is model.tok.weight and classifier_name(model) == "head"
    # counted once: the tied matrix is one parameter
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert model(x[:, :5]).shape == (3, 5, 11)  # shorter windows: generation
    state = model.state_dict()
    assert "head.weight" not in state and "tok.weight" in state  # saved once (safetensors)
    again = gpt()
    with torch.no_grad():
        again.tok.weight.zero_()
    again.load_state_dict(state)
    assert again.head.weight is again.tok.weight and torch.equal(again.tok.weight, model.tok.weight)


def test_chargpt_is_causal():
    model = gpt().eval()
    x = torch.randint(0, 11, (2, 16))
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % 11  # change the future
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_chargpt_takes_no_images_and_vit_no_windows():
    with pytest.raises(ConfigError, match="chargpt takes token windows"):
        create_model("chargpt", (1, 28, 28), 10)
    with pytest.raises(ConfigError, match="vit takes images"):
        create_model("vit", (64,), 84)


def test_vit_on_mnist_shape_and_macs_counted_per_linear():
    torch.manual_seed(0)
    model = create_model("vit", (1, 28, 28), 10)
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    rows = {r["name"]: r for r in layer_table(model, {}, (1, 28, 28))}
    # a block's q layer runs on 16 patches + the class token: 17 x 48 x 48 MACs
    assert rows["blocks.0.attn.q"]["macs"] == 17 * 48 * 48


def test_macs_include_the_attention_matmuls_by_hand():
    """thop cannot see F.scaled_dot_product_attention: q kᵀ and the weights times v are
    counted by mlbench's rule, B·H·T·T·(D + D) per block, the whole square even causal."""
    torch.manual_seed(0)
    t, dim, heads, vocab = 8, 8, 2, 5
    model = CharGPT(vocab, t, dim=dim, layers=1, heads=heads)
    rows = {r["name"]: r for r in layer_table(model, {}, (t,))}
    d = dim // heads
    assert rows["blocks.0.attn.sdpa"]["macs"] == heads * t * t * (d + d) == 1024
    linears = 4 * t * dim * dim + 2 * t * dim * 4 * dim + t * dim * vocab  # q k v proj, mlp, head
    assert sum(r["macs"] for r in rows.values() if r["type"] == "Linear") == linears
    norms = sum(r["macs"] for r in rows.values() if r["type"] == "LayerNorm")
    metrics, _ = size_and_ops(model, {}, (t,))
    assert metrics["macs"] == linears + norms + 1024 and metrics["flops"] == 2 * metrics["macs"]
    assert metrics["macs_conv_linear"] == linears  # the paper's convention: conv/linear only
    # masks thin the linears only: the attention's matmuls have no weight and stay dense
    masks = {f"{n}.weight": torch.zeros_like(m.weight, dtype=torch.bool)
             for n, m in model.named_modules() if n.startswith("blocks") and
             isinstance(m, nn.Linear)}
    masked, _ = size_and_ops(model, masks, (t,))
    assert masked["macs_nz"] == norms + 1024 + t * dim * vocab
    remove_heads(model.blocks[0].attn, [1])  # one head of d: half the attention's matmuls
    assert {r["name"]: r for r in layer_table(model, {}, (t,))}[
        "blocks.0.attn.sdpa"]["macs"] == 1 * t * t * (d + d)
    vit = ViT((1, 8, 8), 3, patch=4, dim=dim, layers=1, heads=heads)  # 4 patches + class
    assert {r["name"]: r for r in layer_table(vit, {}, (1, 8, 8))}[
        "blocks.0.attn.sdpa"]["macs"] == heads * 5 * 5 * (d + d)  # not causal: the same rule


def test_engine_counts_every_token_and_reports_bpc():
    torch.manual_seed(0)
    model = gpt(8, 7)
    split = TextSplit(torch.randint(0, 7, (8 * 10 + 1,)), 8, ("a.txt",))
    out = evaluate(model, split, batch_size=3)  # a partial last batch
    x, y = (torch.cat(t) for t in zip(*split.batches(100), strict=True))
    with torch.no_grad():
        logits = model(x).flatten(0, 1)
    loss = F.cross_entropy(logits, y.flatten()).item()
    top5 = logits.topk(5, dim=1).indices.eq(y.flatten()[:, None]).any(1).float().mean()
    assert out["loss"] == pytest.approx(loss, rel=1e-5)
    assert out["bpc"] == pytest.approx(loss / math.log(2), rel=1e-5)
    assert out["acc1"] == pytest.approx(logits.argmax(1).eq(y.flatten()).float().mean().item())
    assert out["acc5"] == pytest.approx(top5.item())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    from mlbench.device import Precision

    cpu = Precision(torch.device("cpu"), False)
    train = train_one_epoch(model, split.batches(4), opt, sched, cpu)
    assert set(train) == {"train_loss", "train_acc1"} and math.isfinite(train["train_loss"])


def test_classifier_evaluation_has_no_bpc():
    from mlbench.config import DataConfig
    from mlbench.data import load_dataset

    splits = load_dataset(DataConfig(dataset="digits"), torch.device("cpu"))
    torch.manual_seed(0)
    assert "bpc" not in evaluate(create_model("vit", (1, 8, 8), 10), splits.test, 64)
