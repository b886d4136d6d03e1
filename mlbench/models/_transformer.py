"""Small transformers: a character GPT (decoder-only) and a ViT for MNIST, one block type.

A block is pre-norm (nanoGPT's layout): ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``.
Attention keeps its query, key, value and output projections as four ``nn.Linear``
layers (not one fused qkv), so that post-training pruning sees each as the paper's
"linear layer" and removing a head is slicing rows of q, k, v and columns of ``proj``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlbench.errors import ConfigError
from mlbench.models._registry import register_model


class ScaledDotProductAttention(nn.Module):
    """``softmax(q kᵀ / √d) v`` (``F.scaled_dot_product_attention``) as a leaf module.

    No parameters: it exists so that operation counters, which see modules and not
    functions, count the attention's own two matmuls (``mlbench.metrics`` gives thop its
    rule). (B, H, T, D) queries, keys and values -> (B, H, T, D).
    """

    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.causal = causal

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)


class Attention(nn.Module):
    """Multi-head self-attention with ``heads`` heads of ``head_dim`` each.

    ``heads * head_dim`` need not equal the model width: after head removal it is smaller.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, causal: bool) -> None:
        super().__init__()
        self.heads, self.head_dim, self.causal = heads, head_dim, causal
        inner = heads * head_dim
        self.q = nn.Linear(dim, inner)
        self.k = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.proj = nn.Linear(inner, dim)
        self.sdpa = ScaledDotProductAttention(causal)

    def forward(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape

        def split(y: Tensor) -> Tensor:  # (B, T, H*D) -> (B, H, T, D)
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        y = self.sdpa(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.proj(y.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class MLP(nn.Module):
    """``fc`` (width -> hidden), GELU, ``out`` (hidden -> width)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm transformer block: attention then MLP, each residual."""

    def __init__(self, dim: int, heads: int, hidden: int, causal: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"width {dim} must be a multiple of the {heads} heads")
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim // heads, causal)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    """Decoder-only character language model: (B, T) tokens -> (B, T, vocab) logits.

    Token and learned position embeddings, ``layers`` causal blocks, a final LayerNorm
    and an output layer tied to the token embedding (one matrix, counted once). Inputs
    are token indices; the zero batches that size counters (thop, speed) send as float
    are cast to int64 (token 0).
    """

    def __init__(self, vocab: int, seq_len: int, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(seq_len, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, 4 * dim, causal=True)
                                    for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)  # the classifier: last Linear
        self.head.weight = self.tok.weight  # tied
        # One tensor, saved once: the state dict holds tok.weight only (safetensors refuses
        # shared tensors), and loading fills the head from it.
        self.register_state_dict_post_hook(_drop_tied_head)
        self.register_load_state_dict_pre_hook(_fill_tied_head)
        _init(self)

    def forward(self, x: Tensor) -> Tensor:
        idx = x.long()
        t = idx.shape[1]
        if t > self.seq_len:
            raise ValueError(f"sequence of {t} tokens, the model's context is {self.seq_len}")
        h = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))


class ViT(nn.Module):
    """Vision transformer: patches of ``patch`` pixels, a class token, ``layers`` blocks.

    (B, C, H, W) -> (B, classes) logits from the class token's final state.
    """

    def __init__(self, input_shape: tuple[int, int, int], classes: int, patch: int,
                 dim: int, layers: int, heads: int) -> None:
        super().__init__()
        c, h, w = input_shape
        if h % patch or w % patch:
            raise ConfigError(f"vit needs H and W divisible by its patch size {patch}, "
                              f"got input shape {input_shape}")
        tokens = (h // patch) * (w // patch)
        self.embed = nn.Conv2d(c, dim, kernel_size=patch, stride=patch)  # patch embedding
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, 4 * dim, causal=False)
                                    for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        _init(self)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        p = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, dim)
        h = torch.cat([self.cls.expand(len(p), -1, -1), p], dim=1) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h[:, 0]))


def _drop_tied_head(module: nn.Module, state: dict, prefix: str, _meta: object) -> None:
    state.pop(prefix + "head.weight", None)


def _fill_tied_head(module: nn.Module, state: dict, prefix: str, *_: object) -> None:
    if prefix + "tok.weight" in state:
        state.setdefault(prefix + "head.weight", state[prefix + "tok.weight"])


def _init(model: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


@register_model("chargpt")
def chargpt(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Character GPT for windows of T tokens (``input_shape`` = (T,)) over ``num_classes``
    characters: width 64, 2 blocks of 4 heads, MLP 256 (0.11 M parameters, 84 characters),
    sized to train on two CPU cores in minutes."""
    if len(input_shape) != 1:
        raise ConfigError(f"chargpt takes token windows (T,), got input shape {input_shape}; "
                          "use a text dataset (shakespeare, text)")
    return CharGPT(num_classes, input_shape[0], dim=64, layers=2, heads=4)


@register_model("vit")
def vit(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ViT for small images: 7x7 patches (4x4 on inputs not divisible by 7), width 48,
    2 blocks of 4 heads, MLP 192 (0.06 M parameters on MNIST: one epoch reaches the test
    accuracy width 64 did, 83%, at 0.58 times its MACs)."""
    if len(input_shape) != 3:
        raise ConfigError(f"vit takes images (C, H, W), got input shape {input_shape}")
    patch = 7 if input_shape[1] % 7 == 0 and input_shape[2] % 7 == 0 else 4
    return ViT(input_shape, num_classes, patch, dim=48, layers=2, heads=4)  # type: ignore[arg-type]
