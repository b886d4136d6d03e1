"""Models by name: registered ones (LeNet, CIFAR ResNets and VGGs) and torchvision's.

Every model is a plain ``nn.Module`` built from ``(input_shape, num_classes)``,
randomly initialised from the global torch RNG (seed it first) and silent.

Example:
    >>> _ = torch.manual_seed(0)
    >>> model = create_model("resnet20", (3, 32, 32), 10)
    >>> classifier_name(model)
    'fc'
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from mlbench.catalog import torchvision_models
from mlbench.errors import ConfigError
from mlbench.models._classifier import classifier_name
from mlbench.models._registry import MODELS, ModelFactory, register_model
from mlbench.models._torchvision import build_torchvision

__all__ = ["MODELS", "ModelFactory", "classifier_name", "create_model", "model_names",
           "register_model"]

# Importing a model module registers its models: every private module but the plumbing,
# in file-name order (a new model is one new file here).
for _path in sorted(Path(__file__).parent.glob("_*.py")):
    if _path.stem not in ("__init__", "_registry", "_classifier", "_torchvision"):
        importlib.import_module(f"mlbench.models.{_path.stem}")


def model_names() -> list[str]:
    """Registered model names, in registration order."""
    return MODELS.names()


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A freshly initialised model ``name`` for inputs (C, H, W) and ``num_classes`` outputs.

    Registered names come first (so ``vgg16_bn`` is the CIFAR VGG, not torchvision's);
    any other torchvision classification model is built with ``weights=None`` and its
    stem conv adapted to C channels. The model is checked on a zero batch of two in
    eval mode (BatchNorm statistics untouched) and returned in train mode.

    Args:
        name: a name from ``model_names()`` or a torchvision classification model.
        input_shape: (channels, height, width) of one sample, or (T,) for a language
            model's window of T tokens.
        num_classes: number of outputs (a language model's vocabulary size).

    Returns:
        The model, mapping (B, C, H, W) to (B, num_classes) logits, or (B, T) tokens to
        (B, T, num_classes) next-token logits.

    Raises:
        ConfigError: unknown name, bad shape or class count, or a model that cannot
            take this input (too small for its pooling, say).

    Example:
        >>> create_model("lenet", (1, 8, 8), 10)(torch.zeros(4, 1, 8, 8)).shape
        torch.Size([4, 10])
    """
    input_shape = _check_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if name in MODELS:
        model = MODELS.get(name)(input_shape, num_classes)
    elif name in torchvision_models():  # read from its source: no torchvision import
        model = build_torchvision(name, input_shape, num_classes)
    else:
        raise ConfigError(
            f"unknown model {name!r}; choose one of: {', '.join(model_names())} or any "
            "torchvision classification model (e.g. resnet18, mobilenet_v2)"
        )
    _check_forward(model, name, input_shape, num_classes)
    return model


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) not in (1, 3) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ConfigError(
            f"input shape must be three positive integers (C, H, W), or one (T,) for token "
            f"windows, got {input_shape!r}"
        )
    return shape


def _check_forward(
    model: nn.Module, name: str, input_shape: tuple[int, ...], num_classes: int
) -> None:
    """Raise ConfigError unless ``model`` maps a (2, *input_shape) batch to (2, num_classes),
    or, for token windows (T,), to (2, T, num_classes)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as exc:  # any failure here means this input does not fit this model
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"model {name!r} cannot take inputs of shape {input_shape}: {reason}"
        ) from exc
    finally:
        model.train(was_training)
    expected = (2, num_classes) if len(input_shape) == 3 else (2, *input_shape, num_classes)
    if not isinstance(out, torch.Tensor) or out.shape != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"model {name!r} on inputs of shape {input_shape} gives {got}, "
            f"expected {expected}"
        )
