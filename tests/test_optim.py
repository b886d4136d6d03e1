"""Optimizers without torch._dynamo's wrappers (issue 21): the same updates, bit for bit,
and no torch._dynamo import in a run that does not compile."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mlbench.config import OptimConfig
from mlbench.optim import build_optimizer, build_scheduler
from tests.conftest import REPO


def _train(make: object) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = make(model)
    sched = build_scheduler(opt, OptimConfig(), 4)
    for i in range(12):
        x = torch.randn(5, 8, generator=torch.Generator().manual_seed(i))
        torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0, 1])).backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        if i == 5:  # a checkpoint's round trip in the middle
            opt.load_state_dict(opt.state_dict())
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_updates_are_torchs_bit_for_bit(name: str):
    cfg = OptimConfig(optimizer=name, nesterov=True, weight_decay=1e-3)
    torch_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    kwargs = {"momentum": cfg.momentum, "nesterov": True} if name == "sgd" else {}
    ours = _train(lambda m: build_optimizer(m, cfg))
    theirs = _train(lambda m: torch_cls[name](m.parameters(), lr=cfg.lr,
                                              weight_decay=cfg.weight_decay, **kwargs))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert isinstance(build_optimizer(torch.nn.Linear(2, 2), cfg), torch_cls[name])


def test_training_steps_never_import_torch_dynamo():
    code = ("import sys, torch\n"
            "from mlbench.config import OptimConfig\n"
            "from mlbench.optim import build_optimizer\n"
            "m = torch.nn.Linear(3, 3)\n"
            "o = build_optimizer(m, OptimConfig(nesterov=True))\n"
            "m(torch.ones(2, 3)).sum().backward(); o.step(); o.zero_grad()\n"
            "o.load_state_dict(o.state_dict())\n"
            "print('torch._dynamo' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.stdout.strip() == "False", proc.stderr
