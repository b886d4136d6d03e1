"""Device choice and mixed precision, as switches that do nothing when off."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from mlbench.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; a named device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in DEVICES[1:]:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available[kind]:
        raise ConfigError(f"--device {name}: not available on this machine; use --device auto")
    return torch.device(name)


@dataclass
class Precision:
    """Autocast + gradient scaling for CUDA mixed precision; plain fp32 elsewhere.

    bf16 where the GPU supports it (no scaler needed), else fp16 with a GradScaler.
    """

    device: torch.device
    enabled: bool

    def __post_init__(self) -> None:
        self.enabled = self.enabled and self.device.type == "cuda"
        self.dtype = (
            torch.bfloat16
            if self.enabled and torch.cuda.is_bf16_supported()
            else torch.float16
        )
        use_scaler = self.enabled and self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward-pass context: autocast when enabled, a no-op otherwise."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def place_model(model: nn.Module, device: torch.device, memory_format: str = "auto") -> nn.Module:
    """Move ``model`` to ``device`` in its memory format, with cuDNN autotuning on CUDA.

    ``auto`` is channels_last on CUDA (convolutions run faster there, under autocast
    above all) and contiguous elsewhere; ``channels_last`` works on the CPU too.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: autotune once
    if memory_format == "auto":
        memory_format = "channels_last" if device.type == "cuda" else "contiguous"
    layout = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    return model.to(device=device, memory_format=layout)


def compiled(model: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile(model)`` when enabled, the model itself otherwise."""
    return torch.compile(model) if enabled else model
