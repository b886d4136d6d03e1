"""Any torchvision classification model by name, randomly initialised, any input channels."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

# Builder options that keep a model plain: one tensor out in train mode too (no
# auxiliary heads) and the current init chosen explicitly (no FutureWarning).
_EXTRA_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


@functools.cache
def torchvision_names() -> frozenset[str]:
    """Names of torchvision's classification models (no detection, video, quantized...)."""
    import torchvision  # here: importing it costs seconds (its detection ops, torch._dynamo)

    return frozenset(torchvision.models.list_models(module=torchvision.models))


def build_torchvision(name: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """torchvision model ``name`` with ``weights=None``, its stem adapted to ``input_shape[0]``."""
    import torchvision

    kwargs = _EXTRA_KWARGS.get(name, {})
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    if input_shape[0] != 3:
        adapt_input_channels(model, input_shape[0])
    return model


def adapt_input_channels(model: nn.Module, channels: int) -> None:
    """Make the first Conv2d (in registration order, the stem) take ``channels`` inputs.

    The new weight repeats the old one's RGB slices cyclically (1 channel: the R
    slice; 4: R, G, B, R). Each element keeps the model's own random init and no
    random numbers are drawn, so every other weight equals the 3-channel model's
    under the same seed.
    """
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.in_channels != 3 or conv.groups != 1:
        raise ValueError(f"cannot find a 3-channel stem conv in {type(model).__name__}")
    index = torch.arange(channels) % 3
    conv.weight = nn.Parameter(conv.weight.detach()[:, index].clone())
    conv.in_channels = channels
