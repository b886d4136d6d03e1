"""Finding a model's final classifier layer (kept dense by default when pruning)."""

from __future__ import annotations

from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def classifier_name(model: nn.Module) -> str:
    """Qualified name (as in ``model.named_modules()``) of the final classifier layer.

    That is the last ``nn.Linear`` in registration order or, in a model without
    one (squeezenet), the last convolution.

    Example:
        >>> import torchvision
        >>> classifier_name(torchvision.models.mobilenet_v2(num_classes=10))
        'classifier.1'
    """
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    convs = [name for name, m in model.named_modules() if isinstance(m, _CONVS)]
    if convs:
        return convs[-1]
    raise ValueError(f"{type(model).__name__} has no Linear or Conv layer")
