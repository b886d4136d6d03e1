"""Measured speed: latency at batch 1 and throughput at a batch size, dense vs pruned.

Timing is wall time of ``model(x)`` in eval mode under ``torch.inference_mode``,
after ``warmup`` untimed calls, as the median of ``repeats`` timed calls: CUDA events
on a GPU (the stream is synchronized once per call), ``time.perf_counter`` elsewhere.
The thread count is part of the result, since CPU numbers mean nothing without it.

Masked unstructured models run the same dense kernels as their base, so their
measured speedup is about 1; channel-pruned models are smaller dense networks.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from mlbench.names import TIMING_METRICS  # noqa: F401 - re-exported: declared in names.py

SEMI_STRUCTURED_REASON = (
    "2:4 semi-structured kernels need a CUDA GPU of compute capability 8.0 or newer"
)


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Seconds one call takes on ``device``."""
    if device.type == "cuda":
        def cuda_time(fn: Callable[[], object]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        return cuda_time

    def cpu_time(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return cpu_time


def time_forward(
    model: nn.Module, input_shape: tuple[int, ...], batch_size: int, device: torch.device,
    *, warmup: int = 3, repeats: int = 10,
) -> float:
    """Median seconds of one forward pass of a (batch_size, *input_shape) zero batch."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    was_training = model.training
    model.eval()
    x = torch.zeros(batch_size, *input_shape, device=device)
    timer = _timer(device)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            times = [timer(lambda: model(x)) for _ in range(repeats)]
    finally:
        model.train(was_training)
    return statistics.median(times)


def measure(
    model: nn.Module, input_shape: tuple[int, ...], batch_size: int, device: torch.device,
    *, warmup: int = 3, repeats: int = 10,
) -> dict[str, float]:
    """``latency_ms`` at batch 1 and ``throughput`` (samples/s) at ``batch_size``."""
    latency = time_forward(model, input_shape, 1, device, warmup=warmup, repeats=repeats)
    batch = time_forward(model, input_shape, batch_size, device, warmup=warmup,
                         repeats=max(1, repeats // 2))
    return {"latency_ms": latency * 1000.0, "throughput": batch_size / batch}


def measured_speedup(
    base: nn.Module, pruned: nn.Module, input_shape: tuple[int, ...], batch_size: int,
    device: torch.device, *, warmup: int = 3, repeats: int = 10,
) -> dict[str, float]:
    """Dense base against pruned model, timed in alternation on ``device``.

    The two models are timed turn about (base, pruned, base, ...) so that a load change
    on a shared machine hits both alike; each figure is the median of its repeats
    (half as many at ``batch_size``). Returns ``measured_speedup`` (base latency /
    pruned latency at batch 1), ``measured_speedup_throughput`` (pruned / base
    throughput at ``batch_size``), the raw ``latency_ms``, ``throughput``,
    ``base_latency_ms``, ``base_throughput``, ``speed_threads`` and ``speed_seconds``
    (what measuring cost).
    """
    start = time.perf_counter()
    one, many = {}, {}
    for name, count, bs in (("one", repeats, 1), ("many", max(1, repeats // 2), batch_size)):
        times: dict[str, list[float]] = {"base": [], "pruned": []}
        for model in (base, pruned):
            time_forward(model, input_shape, bs, device, warmup=warmup, repeats=1)
        for _ in range(count):
            for key, model in (("base", base), ("pruned", pruned)):
                times[key].append(time_forward(model, input_shape, bs, device, warmup=0,
                                               repeats=1))
        medians = {k: statistics.median(v) for k, v in times.items()}
        (one if name == "one" else many).update(medians)
    return {
        "measured_speedup": one["base"] / one["pruned"],
        "measured_speedup_throughput": many["base"] / many["pruned"],
        "latency_ms": one["pruned"] * 1000.0,
        "throughput": batch_size / many["pruned"],
        "base_latency_ms": one["base"] * 1000.0,
        "base_throughput": batch_size / many["base"],
        "speed_threads": float(torch.get_num_threads()),
        "speed_seconds": time.perf_counter() - start,
    }


def semi_structured_supported(device: torch.device) -> bool:
    """Whether ``torch.sparse.to_sparse_semi_structured`` has fast kernels on ``device``."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def to_semi_structured(model: nn.Module, device: torch.device) -> tuple[nn.Module, int]:
    """Swap every Linear weight that holds a 2:4 pattern for a semi-structured sparse one.

    Only CUDA GPUs of compute capability 8.0+ have these kernels; elsewhere this raises
    RuntimeError with the reason. Weights must be fp16/bf16 already. A layer whose
    shape the kernels refuse stays dense. Returns the model and how many layers changed.
    """
    if not semi_structured_supported(device):
        raise RuntimeError(SEMI_STRUCTURED_REASON)
    from torch.sparse import to_sparse_semi_structured

    converted = 0
    for module in model.modules():
        if isinstance(module, nn.Linear) and is_two_four(module.weight):
            try:
                sparse = to_sparse_semi_structured(module.weight.detach())
            except (RuntimeError, ValueError):  # shapes below the kernels' minimum
                continue
            module.weight = nn.Parameter(sparse, requires_grad=False)
            converted += 1
    return model, converted


def is_two_four(weight: torch.Tensor) -> bool:
    """True if at most 2 of every 4 consecutive weights along the input dim are nonzero."""
    if weight.dim() < 2 or weight.shape[-1] % 4:
        return False
    groups = weight.detach().reshape(-1, 4)
    return bool(((groups != 0).sum(dim=1) <= 2).all())


__all__ = [
    "SEMI_STRUCTURED_REASON",
    "TIMING_METRICS",
    "is_two_four",
    "measure",
    "measured_speedup",
    "semi_structured_supported",
    "time_forward",
    "to_semi_structured",
]
