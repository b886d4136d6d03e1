"""CUDA figures: what mlbench's GPU paths give on one CUDA device, each against its baseline.

Runs only where a CUDA GPU is present (it exits 0 with one line elsewhere). Every figure
is a ratio measured side by side in this process, with a 95% bootstrap interval over
the repeated samples (an interval that includes 1 is "no measurable difference"):

- ``epoch`` (and ``epoch512``, at batch 512): one resnet20 training epoch on
  CIFAR-shaped data held on the GPU (45,000 uint8 images, crop + flip, batch 128;
  mlbench's ``TensorSplit`` and ``engine.train_one_epoch``): fp32 contiguous (the
  baseline) against AMP (bf16) + channels_last, and against AMP + channels_last + ``torch.compile``.
- ``semi``: 2:4 semi-structured sparsity (``torch.sparse.to_sparse_semi_structured``)
  against the dense fp16 product, for one linear layer at several token counts, with
  each of PyTorch's two kernel back ends (cuSPARSELt and CUTLASS), and for
  a stack of transformer-MLP-shaped layers converted by ``mlbench.speed.to_semi_structured``.
- ``channels``: measured speedup of a channel-pruned resnet20 (``global_l1_channel``,
  2x and 4x; Torch-Pruning surgery) against its dense base at batch 1 and batch 128.
- ``nccl``: one DDP training epoch through ``Dist.wrap`` on a one-rank NCCL group (with
  one GPU, only the NCCL path's correctness, not a multi-GPU scaling figure).

    python benchmarks/cuda_figures.py --out cuda.json --markdown cuda.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlbench.config import OptimConfig  # noqa: E402
from mlbench.data._augment import CropFlip  # noqa: E402
from mlbench.data._normalize import Normalize  # noqa: E402
from mlbench.data._tensor import TensorSplit  # noqa: E402
from mlbench.device import Precision, compiled, place_model  # noqa: E402
from mlbench.engine import train_one_epoch  # noqa: E402
from mlbench.models import create_model  # noqa: E402
from mlbench.optim import build_optimizer, build_scheduler  # noqa: E402

Figures = list[dict[str, object]]


def ratio_ci(base: list[float], new: list[float], seed: int = 0,
             draws: int = 2000) -> tuple[float, float, float]:
    """Median(base)/median(new) with a 95% percentile-bootstrap interval (times in, speedup out)."""
    gen = torch.Generator().manual_seed(seed)
    b, n = torch.tensor(base), torch.tensor(new)
    ib = torch.randint(len(b), (draws, len(b)), generator=gen)
    inn = torch.randint(len(n), (draws, len(n)), generator=gen)
    ratios = b[ib].median(dim=1).values / n[inn].median(dim=1).values
    lo, hi = torch.quantile(ratios, torch.tensor([0.025, 0.975])).tolist()
    return statistics.median(base) / statistics.median(new), lo, hi


def cuda_seconds(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes on the current CUDA stream."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0


def cifar_shaped(n: int, device: torch.device, seed: int = 0) -> TensorSplit:
    """``n`` random CIFAR-shaped uint8 images with 10 labels, held on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    norm = Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), device)
    return TensorSplit(x.to(device), y.to(device), norm, CropFlip(4))


def epoch_times(variant: str, split: TensorSplit, device: torch.device, epochs: int,
                batch: int = 128) -> list[float]:
    """Seconds per training epoch of resnet20 (the first, warm-up epoch not counted)."""
    torch.manual_seed(0)
    model = create_model("resnet20", (3, 32, 32), 10)
    amp = variant != "fp32"
    place_model(model, device, "channels_last" if amp else "contiguous")
    cfg = OptimConfig(epochs=epochs + 1, batch_size=batch, lr=0.1, schedule="constant")
    optimizer = build_optimizer(model, cfg)
    steps = split.num_batches(cfg.batch_size, drop_last=True)
    scheduler = build_scheduler(optimizer, cfg, steps)
    precision = Precision(device, amp)
    trained = compiled(model, variant == "amp+cl+compile")
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs + 1):
        batches = split.batches(batch, shuffle=True, augment=True, generator=gen,
                                drop_last=True)
        start = time.perf_counter()
        metrics = train_one_epoch(trained, batches, optimizer, scheduler, precision)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        assert metrics["train_loss"] == metrics["train_loss"], "nan loss"
    return times[1:]


def bench_epoch(device: torch.device, epochs: int, samples: int, batch: int = 128,
                variants: tuple[str, ...] = ("amp+cl", "amp+cl+compile")) -> Figures:
    split = cifar_shaped(samples, device)
    base = epoch_times("fp32", split, device, epochs, batch)
    figures: Figures = [{"name": f"resnet20 epoch, batch {batch}, fp32 contiguous", "seconds": base,
                         "samples_per_s": samples / statistics.median(base)}]
    for variant in variants:
        try:
            times = epoch_times(variant, split, device, epochs, batch)
        except Exception as exc:  # noqa: BLE001 - report, keep the other figures
            figures.append({"name": f"resnet20 epoch, batch {batch}, {variant}",
                            "error": repr(exc)[:300]})
            continue
        speedup, lo, hi = ratio_ci(base, times)
        figures.append({"name": f"resnet20 epoch, batch {batch}, {variant}", "seconds": times,
                        "samples_per_s": samples / statistics.median(times),
                        "speedup_vs_fp32": speedup, "ci95": [lo, hi]})
    return figures


def two_four(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` with the 2 smallest-magnitude of every 4 consecutive inputs set to 0."""
    groups = weight.reshape(-1, 4)
    drop = groups.abs().topk(2, dim=1, largest=False).indices
    return groups.scatter(1, drop, 0).reshape(weight.shape)


def timed_pair(dense: Callable[[], object], sparse: Callable[[], object],
               repeats: int, calls: int) -> tuple[list[float], list[float]]:
    """Interleaved samples, each the mean of ``calls`` calls, of ``dense`` and ``sparse``."""
    for fn in (dense, sparse):
        for _ in range(3):
            fn()
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((dense, a), (sparse, b)):
            out.append(cuda_seconds(lambda fn=fn: [fn() for _ in range(calls)]) / calls)
    return a, b


def bench_semi(device: torch.device, repeats: int) -> Figures:
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    from mlbench.speed import is_two_four, to_semi_structured

    figures: Figures = []
    torch.manual_seed(0)
    for backend in ("cusparselt", "cutlass"):
        SparseSemiStructuredTensor._FORCE_CUTLASS = backend == "cutlass"
        for out_f, in_f in ((4096, 4096), (11008, 4096)):
            w = two_four(torch.randn(out_f, in_f, device=device, dtype=torch.float16))
            try:
                sw = to_sparse_semi_structured(w)
                torch.nn.functional.linear(w[:8], sw)
            except RuntimeError as exc:  # CUTLASS's 2:4 kernels exist for sm_8x only
                figures.append({"name": f"2:4 linear, {backend}", "error": str(exc)[:200]})
                break
            for tokens in (128, 2048, 16384):
                x = torch.randn(tokens, in_f, device=device, dtype=torch.float16)
                err = (torch.nn.functional.linear(x, w)
                       - torch.nn.functional.linear(x, sw)).abs().max().item()
                a, b = timed_pair(lambda x=x, w=w: torch.nn.functional.linear(x, w),
                                  lambda x=x, sw=sw: torch.nn.functional.linear(x, sw),
                                  repeats, 20)
                speedup, lo, hi = ratio_ci(a, b)
                figures.append({"name": f"2:4 linear {out_f}x{in_f}, {tokens} tokens, fp16, "
                                        f"{backend}",
                                "dense_ms": statistics.median(a) * 1e3,
                                "sparse_ms": statistics.median(b) * 1e3,
                                "speedup": speedup, "ci95": [lo, hi], "max_abs_err": err})
    SparseSemiStructuredTensor._FORCE_CUTLASS = False
    # a transformer-MLP-shaped stack, converted as a prune run converts a model
    dim, hidden = 2048, 8192
    mlp = nn.Sequential(*[m for _ in range(4) for m in (
        nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))]).to(device).half().eval()
    with torch.no_grad():
        for m in mlp.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(two_four(m.weight))
                assert is_two_four(m.weight)
    import copy

    sparse_mlp, converted = to_semi_structured(copy.deepcopy(mlp), device)
    x = torch.randn(4096, dim, device=device, dtype=torch.float16)
    with torch.inference_mode():
        a, b = timed_pair(lambda: mlp(x), lambda: sparse_mlp(x), repeats, 10)
    speedup, lo, hi = ratio_ci(a, b)
    figures.append({"name": f"2:4 MLP stack 4x({dim}->{hidden}->{dim}), 4096 tokens, fp16, "
                            f"{converted} layers converted by mlbench.speed",
                    "dense_ms": statistics.median(a) * 1e3, "sparse_ms": statistics.median(b) * 1e3,
                    "speedup": speedup, "ci95": [lo, hi]})
    return figures


def bench_channels(device: torch.device, repeats: int) -> Figures:
    from mlbench.structured import prune_channels

    figures: Figures = []
    torch.manual_seed(0)
    dense = create_model("resnet20", (3, 32, 32), 10).eval()
    for compression in (2.0, 4.0):
        pruned = prune_channels(dense, "global_l1_channel", compression, (3, 32, 32),
                                "fc").model.eval()
        dm = place_model(_copy(dense), device, "channels_last")
        pm = place_model(_copy(pruned), device, "channels_last")
        for batch in (1, 128):
            x = torch.randn(batch, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                a, b = timed_pair(lambda x=x, dm=dm: dm(x), lambda x=x, pm=pm: pm(x),
                                  repeats, 20)
            speedup, lo, hi = ratio_ci(a, b)
            params = sum(p.numel() for p in dense.parameters())
            kept = sum(p.numel() for p in pruned.parameters())
            figures.append({"name": f"resnet20 channels x{compression:g} (params "
                                    f"{params / kept:.2f}x), batch {batch}, bf16",
                            "dense_ms": statistics.median(a) * 1e3,
                            "pruned_ms": statistics.median(b) * 1e3,
                            "speedup": speedup, "ci95": [lo, hi],
                            "verdict": "no measurable speedup" if lo <= 1 <= hi else
                            ("faster" if lo > 1 else "slower")})
    return figures


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def bench_nccl(device: torch.device, samples: int) -> Figures:
    import torch.distributed as torch_dist

    from mlbench.distributed import Dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29511")
    torch_dist.init_process_group("nccl", rank=0, world_size=1, device_id=device)
    try:
        t = torch.ones(4, device=device)
        torch_dist.all_reduce(t)
        torch.manual_seed(0)
        model = place_model(create_model("resnet20", (3, 32, 32), 10), device, "channels_last")
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=[device.index or 0])
        cfg = OptimConfig(epochs=1, batch_size=128, lr=0.1, schedule="constant")
        opt = build_optimizer(model, cfg)
        split = cifar_shaped(samples, device, seed=1)
        sched = build_scheduler(opt, cfg, split.num_batches(128, drop_last=True))
        batches = split.batches(128, shuffle=True, augment=True,
                                generator=torch.Generator().manual_seed(0), drop_last=True)
        start = time.perf_counter()
        metrics = train_one_epoch(wrapped, batches, opt, sched, Precision(device, True), Dist())
        torch.cuda.synchronize()
        return [{"name": "DDP (NCCL, 1 rank) resnet20 epoch, AMP + channels_last",
                 "all_reduce_ok": bool(t.eq(1).all()), "seconds": time.perf_counter() - start,
                 "train_loss": metrics["train_loss"]}]
    finally:
        torch_dist.destroy_process_group()


def markdown(result: dict[str, object]) -> str:
    lines = [f"GPU: {result['gpu']}, torch {result['torch']}, CUDA {result['cuda']}, "
             f"{result['date']}, load average {result['loadavg']}", "",
             "| figure | baseline | mlbench path | ratio [95% CI] |", "|---|---|---|---|"]
    for section in ("epoch", "epoch512", "semi", "channels", "nccl"):
        for f in result.get(section, []):  # type: ignore[union-attr]
            if "error" in f:
                lines.append(f"| {f['name']} | | failed: {f['error']} | |")
            elif "speedup_vs_fp32" in f:
                lo, hi = f["ci95"]
                lines.append(f"| {f['name']} | fp32 epoch | {f['samples_per_s']:.0f} samples/s "
                             f"| {f['speedup_vs_fp32']:.2f}x [{lo:.2f}, {hi:.2f}] |")
            elif "samples_per_s" in f:
                lines.append(f"| {f['name']} | (baseline) | "
                             f"{f['samples_per_s']:.0f} samples/s | 1 |")
            elif "speedup" in f:
                base = f.get("dense_ms")
                new = f.get("sparse_ms", f.get("pruned_ms"))
                lines.append(f"| {f['name']} | {base:.3f} ms dense | {new:.3f} ms | "
                             f"{f['speedup']:.2f}x [{f['ci95'][0]:.2f}, {f['ci95'][1]:.2f}]"
                             f"{' ' + f['verdict'] if 'verdict' in f else ''} |")
            else:
                lines.append(f"| {f['name']} | | {f['seconds']:.2f} s, all_reduce ok: "
                             f"{f['all_reduce_ok']} | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("cuda-figures.json"))
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per variant")
    parser.add_argument("--samples", type=int, default=45_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--only", default="epoch,semi,channels,nccl")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("cuda_figures: no CUDA GPU here; nothing measured")
        return 0
    device = torch.device("cuda", 0)
    result: dict[str, object] = {
        "gpu": torch.cuda.get_device_name(device), "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    benches = {"epoch": lambda: bench_epoch(device, args.epochs, args.samples),
               "epoch512": lambda: bench_epoch(device, args.epochs, args.samples, 512,
                                               ("amp+cl",)),
               "semi": lambda: bench_semi(device, args.repeats),
               "channels": lambda: bench_channels(device, args.repeats),
               "nccl": lambda: bench_nccl(device, 8192)}
    for name in args.only.split(","):
        start = time.perf_counter()
        try:
            result[name] = benches[name]()
        except Exception as exc:  # noqa: BLE001 - one failing section keeps the others
            result[name] = [{"name": name, "error": repr(exc)[:500]}]
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
        args.out.write_text(json.dumps(result, indent=1))
    result["loadavg_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    args.out.write_text(json.dumps(result, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
