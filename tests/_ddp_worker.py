"""Run under ``torchrun --nproc_per_node 2``: prune-and-fit with DDP, write what each rank has.

Each rank starts from different random weights (rank-seeded), so equal results prove
the broadcasts. Writes ``rank<R>.safetensors`` (masks and final weights) to argv[1].
"""

from __future__ import annotations

import sys

import torch
from safetensors.torch import save_file

from mlbench.config import RunConfig
from mlbench.device import Precision
from mlbench.distributed import from_env, shutdown
from mlbench.engine import evaluate, fit
from mlbench.kinds import kind_of
from mlbench.recipe import prepare
from mlbench.setup import generator, score_batches, seeded

CFG = RunConfig.from_flat({
    "dataset": "synthetic", "synthetic_shape": "1x8x8", "synthetic_classes": 4,
    "synthetic_samples": 192, "model": "lenet", "epochs": 3, "batch_size": 32,
    "device": "cpu", "compression": 4.0, "strategy": "global_grad",
})


def main(out: str) -> None:
    dist = from_env(torch.device("cpu"))
    setup = prepare(CFG, dist=dist)
    with torch.no_grad():  # each rank its own weights: only broadcasts can make them agree
        torch.manual_seed(100 + dist.rank)
        for p in setup.model.parameters():
            p.normal_(0, 0.1)
    torch.manual_seed(0)
    if dist.is_main:
        reference = {k: v.clone() for k, v in setup.model.state_dict().items()}
        save_file(reference, f"{out}/start.safetensors")
    dist.broadcast_module(setup.model)
    masks = kind_of(CFG.prune.strategy).prune(setup, score_batches(setup)).masks  # applied
    precision = Precision(setup.device, False)
    with seeded(CFG.seed):
        last = fit(setup.model, setup.splits.train, setup.splits.val, CFG.finetune,
                   generator=generator(CFG.seed), precision=precision, masks=masks, dist=dist)
    test = evaluate(setup.model, setup.splits.test, 32, precision, dist=dist)
    metrics = torch.tensor([last["train_loss"], last["val_acc1"], test["acc1"], test["loss"]],
                           dtype=torch.float64)
    save_file({**{f"mask.{k}": v.to(torch.uint8) for k, v in masks.items()},
               **{f"weight.{k}": v.contiguous() for k, v in setup.model.state_dict().items()},
               "metrics": metrics}, f"{out}/rank{dist.rank}.safetensors")
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
