"""The recipe's CUDA paths end to end, without a tracking store: what a prune run measures.

For each case: ``recipe.prepare`` on the GPU, the dense base trained in process with the
base recipe (``engine.fit``, AMP as the run's ``--amp``), then ``recipe.finetune``: the
kind prunes, the schedule fine-tunes (none for post-training pruning), the test split is
evaluated, and the measured speedup is timed on the kind's kernels with its 95% interval
(semi-structured 2:4 kernels for the ``*_2_4`` calibrated strategies). A run caps its
measuring at 4% of its own fine-tuning, which leaves post-training runs (no fine-tuning)
nothing: each case is also timed with a budget of 20 s. Prints one JSON object per case;
``--out`` writes them all.

    python benchmarks/cuda_recipe.py --data-dir ../shared/data --out recipe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlbench.config import RunConfig  # noqa: E402
from mlbench.device import Precision  # noqa: E402
from mlbench.engine import fit  # noqa: E402
from mlbench.kinds import kind_of  # noqa: E402
from mlbench.recipe import finetune, prepare  # noqa: E402
from mlbench.setup import generator, seeded  # noqa: E402
from mlbench.speed import measured_speedup  # noqa: E402

SHOWN = ("base_acc1", "pre_acc1", "acc1", "loss", "bpc", "compression", "linear_sparsity",
         "speedup", "speedup_conv_linear", "measured_speedup", "measured_speedup_lo",
         "measured_speedup_hi", "measurable_speedup", "measured_speedup_throughput",
         "measured_speedup_throughput_lo", "measured_speedup_throughput_hi",
         "semi_structured_layers", "speed_pairs", "speed_seconds", "latency_ms",
         "base_latency_ms")


def cases(data_dir: str, device: str, small: bool) -> dict[str, dict[str, object]]:
    text = {"dataset": "shakespeare", "data_dir": data_dir, "model": "chargpt",
            "seq_len": 64, "train_chars": 20_000 if small else 1_000_000,
            "eval_chars": 5_000 if small else 100_000, "base_epochs": 1,
            "base_batch_size": 32, "base_optimizer": "adamw", "base_lr": 0.005,
            "base_weight_decay": 0.01, "epochs": 0, "batch_size": 64, "compression": 2.0,
            "calib_samples": 128, "calib_seq_len": 64}
    cifar = {"dataset": "synthetic", "synthetic_shape": "3x32x32", "synthetic_classes": 10,
             "synthetic_samples": 512 if small else 20_000, "model": "resnet20",
             "base_epochs": 1, "epochs": 1, "batch_size": 128, "base_batch_size": 128}
    common = {"device": device, "seed": 0, "speed_repeats": 30}
    return {
        "chargpt wanda_2_4 (2:4 kernels)": {**common, **text, "strategy": "wanda_2_4"},
        "chargpt sparsegpt 50%": {**common, **text, "strategy": "sparsegpt"},
        "resnet20 global_l1_channel 4x": {**common, **cifar, "strategy": "global_l1_channel",
                                          "compression": 4.0},
        "resnet20 global_weight 8x (masks)": {**common, **cifar, "strategy": "global_weight",
                                              "compression": 8.0},
    }


def run(flat: dict[str, object]) -> dict[str, object]:
    cfg = RunConfig.from_flat(flat)
    start = time.perf_counter()
    setup = prepare(cfg)
    precision = Precision(setup.device, cfg.amp)
    with seeded(cfg.seed):
        fit(setup.model, setup.splits.train, setup.splits.val, cfg.base,
            generator=generator(cfg.seed), precision=precision, augment=cfg.data.augment)
    base_s = time.perf_counter() - start
    outcome = finetune(setup)
    metrics = outcome.metrics
    # the run's own measurement is capped at 4% of its fine-tuning (none, post-training);
    # here the same timing with a budget of its own, on the kind's kernels
    kind = kind_of(cfg.prune.strategy)
    base, model, extra = kind.timed(setup, outcome.dense, outcome.pruned)
    with torch.no_grad():
        timed = measured_speedup(base, model, setup.splits.info.input_shape,
                                 cfg.finetune.batch_size, setup.device, budget_s=20.0,
                                 max_pairs=30) | extra
    return {"device": str(setup.device), "amp": cfg.amp, "kernels": kind.kernels(setup),
            "base_seconds": round(base_s, 2),
            "total_seconds": round(time.perf_counter() - start, 2),
            "run": {k: metrics[k] for k in SHOWN if k in metrics},
            "timed_20s": {k: timed[k] for k in SHOWN if k in timed}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated substrings of cases")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("cuda_recipe: no CUDA GPU here; nothing measured")
        return 0
    results = {}
    for name, flat in cases(str(Path(args.data_dir).resolve()), args.device,
                            args.small).items():
        if args.only and not any(s in name for s in args.only.split(",")):
            continue
        try:
            results[name] = run(flat)
        except Exception as exc:  # noqa: BLE001 - one failing case keeps the others
            results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}
        print(json.dumps({name: results[name]}), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
