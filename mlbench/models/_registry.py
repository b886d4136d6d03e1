"""The model registry: ``@register_model("name")`` where a model is defined."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mlbench.registry import Registry

ModelFactory = Callable[[tuple[int, int, int], int], nn.Module]
"""A model builder: ``(input_shape (C, H, W), num_classes) -> nn.Module``."""

MODELS: Registry[ModelFactory] = Registry("model")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a model builder as ``name`` (a string literal: mlbench/catalog.py reads it).

    Example:
        >>> @register_model("tiny_mlp")
        ... def tiny_mlp(input_shape, num_classes):
        ...     return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
    """
    return MODELS.register(name)
