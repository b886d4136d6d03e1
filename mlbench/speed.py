"""Measured speed with its uncertainty: dense base against pruned model (issue 19).

A timing is a set of *samples*; a sample is ``calls`` back-to-back calls of ``model(x)``
(eval mode, ``torch.inference_mode``) timed as one, with ``calls`` chosen so that a
sample lasts at least ``MIN_SAMPLE_S`` (far above the timer's resolution: a batch-1
LeNet call takes tens of microseconds). Samples of the two models are taken in
interleaved pairs, the order alternating (base-pruned, pruned-base, ...), so that a load
change on a shared machine hits both alike. The speedup is the geometric mean of the
pairs' ratios, with a Student t 95% interval on their logarithms; pairs are added (``MIN_PAIRS`` at
least) until that interval is narrower than ``TARGET_REL_HALF_WIDTH`` of the estimate,
or ``max_pairs`` is reached; but never once the next pair would take measuring past
``budget_s`` (a prune run passes a share of its own time: measuring costs at most
``COST_SHARE`` of the run, warm-up and one pair per batch size apart; a run that trains
nothing itself gets at least ``FLOOR_S``, see ``speed_budget``), even before
``MIN_PAIRS``: with one pair there is no interval, which reads as no measurable
speedup. When one warm-up call of each model shows that even a warm-up, a calibration
and one pair would pass the budget (a heavily loaded machine), nothing more is timed:
the speedup is NaN, "not measured". An interval that includes 1 is "no measurable speedup".

Threads are fixed for the whole measurement (``threads``, default: torch's current
count) and logged. CUDA: samples are timed with CUDA events; elsewhere with
``time.perf_counter``.

Masked unstructured models run the same dense kernels as their base, so their
measured speedup is about 1; channel-pruned models are smaller dense networks.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from mlbench.names import TIMING_METRICS  # noqa: F401 - re-exported: declared in names.py

SEMI_STRUCTURED_REASON = (
    "2:4 semi-structured kernels need a CUDA GPU of compute capability 8.0 or newer"
)
COST_SHARE = 0.04  # measuring costs at most this share of the run it measures (< 5%)
# A run that trains nothing itself (post-training pruning, no recovery fine-tuning) lasts
# seconds, mostly evaluation: 4% of it leaves no time for even one pair. Such a run may
# measure for this long instead (the cap it logs says which rule it got).
FLOOR_S = 2.0
MIN_SAMPLE_S = 2e-3  # seconds a sample lasts at least: >= 1000 x perf_counter's resolution
MIN_PAIRS = 3  # pairs before an interval is computed (2 degrees of freedom)
MAX_PAIRS = 30  # pairs at most, per batch size
TARGET_REL_HALF_WIDTH = 0.02  # stop once the 95% interval is within +-2% of the estimate
NO_SPEEDUP = "no measurable speedup"


@dataclass(frozen=True)
class Ratio:
    """Dense time over pruned time, with its 95% interval and how it was sampled."""

    estimate: float  # geometric mean of the pairs' ratios
    lo: float
    hi: float
    pairs: int  # interleaved (base, pruned) sample pairs
    calls: int  # forward calls per sample
    base_s: float  # seconds per call, dense (median of its samples); NaN: not measured
    pruned_s: float  # seconds per call, pruned

    @property
    def measurable(self) -> bool:
        """Whether the interval excludes 1 (faster or slower, measurably); no interval
        (a single pair) is not measurable."""
        return self.verdict() != NO_SPEEDUP

    def verdict(self) -> str:
        """``faster``, ``slower`` or ``no measurable speedup``."""
        return speed_verdict(self.lo, self.hi)


def speed_verdict(lo: float, hi: float) -> str:
    """What an interval of a measured speedup says: ``faster``, ``slower`` or
    ``no measurable speedup`` (the interval includes 1, or is missing)."""
    if math.isnan(lo) or math.isnan(hi) or lo <= 1.0 <= hi:
        return NO_SPEEDUP
    return "faster" if lo > 1.0 else "slower"


def describe(metrics: dict[str, float]) -> str:
    """One line on a run's measured speedups, each with its interval and what it says.

    Example:
        >>> describe({"measured_speedup": 1.01, "measured_speedup_lo": 0.97,
        ...           "measured_speedup_hi": 1.05})
        'measured speedup batch 1: 1.01 [0.97, 1.05] no measurable speedup'
    """
    parts = []
    for suffix, where in (("", "batch 1"), ("_throughput", "batch")):
        if f"measured_speedup{suffix}" not in metrics:
            continue
        est = metrics[f"measured_speedup{suffix}"]
        if math.isnan(est):
            parts.append(f"{where}: not measured (even one pair would pass the cost cap)")
            continue
        lo = metrics.get(f"measured_speedup{suffix}_lo", math.nan)
        hi = metrics.get(f"measured_speedup{suffix}_hi", math.nan)
        parts.append(f"{where}: {est:.2f} [{lo:.2f}, {hi:.2f}] {speed_verdict(lo, hi)}")
    return "measured speedup " + "; ".join(parts) if parts else ""


# Student's t 97.5% quantiles for 1..30 degrees of freedom (any statistics table); no
# scipy here: importing it would cost a run more than measuring does
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
         2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def _t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (3 decimals).

    A table up to 30, beyond it the Cornish-Fisher expansion around the normal's 1.95996
    (error under 1e-4 there).
    """
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def ratio_interval(base: list[float], pruned: list[float]) -> tuple[float, float, float]:
    """(estimate, lo, hi) of base/pruned from paired samples: t interval on log ratios."""
    logs = [math.log(b / p) for b, p in zip(base, pruned, strict=True)]
    n = len(logs)
    mean = sum(logs) / n
    if n < 2:
        return math.exp(mean), math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / (n - 1))
    half = _t975(n - 1) * sd / math.sqrt(n)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def _sampler(device: torch.device) -> Callable[[Callable[[], object], int], float]:
    """Seconds that ``calls`` calls of a function take together on ``device``."""
    if device.type == "cuda":
        def cuda_time(fn: Callable[[], object], calls: int) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        return cuda_time

    def cpu_time(fn: Callable[[], object], calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return time.perf_counter() - start
    return cpu_time


@contextlib.contextmanager
def _measuring(models: tuple[nn.Module, ...], threads: int) -> Iterator[None]:
    """Eval mode, inference mode and a fixed thread count; everything given back after."""
    modes = [m.training for m in models]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for m in models:
            m.eval()
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(before)
        for m, mode in zip(models, modes, strict=True):
            m.train(mode)


def compare(
    base: nn.Module, pruned: nn.Module, input_shape: tuple[int, ...], batch_size: int,
    device: torch.device, *, budget_s: float = math.inf, max_pairs: int = MAX_PAIRS,
    threads: int | None = None,
) -> Ratio:
    """Time ``base`` against ``pruned`` on a zero batch of ``batch_size``: see the module doc.

    Example:
        >>> r = compare(net, copy.deepcopy(net), (1, 8, 8), 1, torch.device("cpu"))
        >>> r.verdict()  # an identical copy: the interval includes 1
        'no measurable speedup'
    """
    if max_pairs < MIN_PAIRS:
        raise ValueError(f"max_pairs must be >= {MIN_PAIRS}, got {max_pairs}")
    start = time.perf_counter()
    x = torch.zeros(batch_size, *input_shape, device=device)
    sample = _sampler(device)
    with _measuring((base, pruned), threads or torch.get_num_threads()):
        fns = (lambda: base(x), lambda: pruned(x))
        for done, fn in enumerate(fns, start=1):  # warm-up: caches, allocator, lazy init
            sample(fn, 1)
            # warm-up, calibration (a sample or two) and one pair: about 4 warm-ups of both
            predicted = 4 * (time.perf_counter() - start) * len(fns) / done
            if predicted > budget_s:  # past the cap: stop here, before the other model
                return Ratio(math.nan, math.nan, math.nan, 0, 0, math.nan, math.nan)
        calls = max(_autorange(sample, fn) for fn in fns)
        times: tuple[list[float], list[float]] = ([], [])
        pair_s = 2 * MIN_SAMPLE_S
        while len(times[0]) < max_pairs:
            if len(times[0]) >= MIN_PAIRS:
                est, lo, hi = ratio_interval(*times)
                if (hi - lo) / 2 <= TARGET_REL_HALF_WIDTH * est:
                    break
            # the cap holds even before MIN_PAIRS (a loaded machine): fewer pairs give a
            # wide interval, or none at all, which reads as no measurable speedup
            if times[0] and time.perf_counter() - start + pair_s > budget_s:
                break
            began = time.perf_counter()
            order = (0, 1) if len(times[0]) % 2 == 0 else (1, 0)
            for i in order:
                times[i].append(sample(fns[i], calls) / calls)
            pair_s = max(pair_s, time.perf_counter() - began)  # the slowest pair so far
    est, lo, hi = ratio_interval(*times)
    return Ratio(est, lo, hi, len(times[0]), calls, _median(times[0]), _median(times[1]))


def _autorange(sample: Callable[[Callable[[], object], int], float],
               fn: Callable[[], object]) -> int:
    """Calls (1, 2, 5, 10, 20, ...) that take ``fn`` at least ``MIN_SAMPLE_S`` together."""
    calls = 1
    for step in range(64):
        if sample(fn, calls) >= MIN_SAMPLE_S:
            return calls
        calls *= (2, 5 / 2, 2)[step % 3]
        calls = int(calls)
    return calls


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def time_forward(
    model: nn.Module, input_shape: tuple[int, ...], batch_size: int, device: torch.device,
    *, warmup: int = 3, repeats: int = 10,
) -> float:
    """Median seconds of one forward pass of a (batch_size, *input_shape) zero batch."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    x = torch.zeros(batch_size, *input_shape, device=device)
    sample = _sampler(device)
    with _measuring((model,), torch.get_num_threads()):
        for _ in range(warmup):
            model(x)
        times = [sample(lambda: model(x), 1) for _ in range(repeats)]
    return _median(times)


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
    device: torch.device, *, budget_s: float = math.inf, max_pairs: int = MAX_PAIRS,
    threads: int | None = None,
) -> dict[str, float]:
    """Dense base against pruned model at batch 1 (latency) and ``batch_size`` (throughput).

    Half of ``budget_s`` (seconds) goes to each batch size. Returns ``measured_speedup``
    (base / pruned latency) with ``measured_speedup_lo``/``_hi`` (its 95% interval) and
    ``measurable_speedup`` (1 if the interval excludes 1, else 0), the same for
    ``measured_speedup_throughput``, the raw ``latency_ms``, ``throughput``,
    ``base_latency_ms``, ``base_throughput``, how it was sampled (``speed_pairs``,
    ``speed_calls``, ``*_throughput``), ``speed_threads``, ``speed_budget_seconds`` and
    ``speed_seconds`` (what measuring cost).
    """
    start = time.perf_counter()
    threads = threads or torch.get_num_threads()
    one = compare(base, pruned, input_shape, 1, device, budget_s=budget_s / 2,
                  max_pairs=max_pairs, threads=threads)
    left = budget_s - (time.perf_counter() - start)
    many = compare(base, pruned, input_shape, batch_size, device, budget_s=left,
                   max_pairs=max_pairs, threads=threads)
    out = {
        "latency_ms": one.pruned_s * 1000.0,
        "throughput": batch_size / many.pruned_s,
        "base_latency_ms": one.base_s * 1000.0,
        "base_throughput": batch_size / many.base_s,
        "speed_threads": float(threads),
    }
    for suffix, r in (("", one), ("_throughput", many)):
        # one pair (the cap on a loaded machine) has no interval: NaN, always logged
        out |= {f"measured_speedup{suffix}_lo": r.lo, f"measured_speedup{suffix}_hi": r.hi}
        out |= {f"measured_speedup{suffix}": r.estimate,
                f"measurable_speedup{suffix}": float(r.measurable),
                f"speed_pairs{suffix}": float(r.pairs), f"speed_calls{suffix}": float(r.calls)}
    if math.isfinite(budget_s):
        out["speed_budget_seconds"] = budget_s
    out["speed_seconds"] = time.perf_counter() - start
    return out


def speed_budget(run_s: float, trains: bool) -> float:
    """Seconds measuring may cost: ``COST_SHARE`` of the run so far (``run_s``), or, for a
    run that trains nothing itself (``trains`` false), at least ``FLOOR_S``."""
    share = COST_SHARE * run_s
    return share if trains else max(share, FLOOR_S)


def cost_cap(trains: bool) -> str:
    """The rule ``speed_budget`` applies, in words (a run's ``speed_cost_cap`` param)."""
    share = f"{COST_SHARE:.0%} of the run's own time"
    if trains:
        return share
    return (f"the larger of {share} and {FLOOR_S:g} s: the run trains nothing itself "
            "(no fine-tuning), so a share of it would leave no time to measure")


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
    "COST_SHARE",
    "FLOOR_S",
    "NO_SPEEDUP",
    "SEMI_STRUCTURED_REASON",
    "TIMING_METRICS",
    "Ratio",
    "compare",
    "cost_cap",
    "describe",
    "is_two_four",
    "measure",
    "measured_speedup",
    "ratio_interval",
    "semi_structured_supported",
    "speed_budget",
    "speed_verdict",
    "time_forward",
    "to_semi_structured",
]
