"""Progress off a terminal: one flushed line per epoch and per sweep cell."""

from __future__ import annotations

import io
import re

from mlbench.progress import CellProgress, EpochProgress


def test_a_line_per_epoch_and_per_cell_with_what_is_left():
    out = io.StringIO()
    progress = EpochProgress("fine-tune x", total=2, stream=out, terminal=False)
    seen = []
    on_epoch = progress.chain(lambda e, m: seen.append(e))
    for epoch in progress.wrap(range(1, 3)):
        on_epoch(epoch, {"train_loss": 0.5, "val_acc1": 0.75, "lr": 0.1})
    assert seen == [1, 2]
    lines = out.getvalue().splitlines()
    assert [re.sub(r"\d+\.\d s$", "T", x) for x in lines] == [
        "fine-tune x epoch 1/2  train_loss=0.5  val_acc1=0.75  T",
        "fine-tune x epoch 2/2  train_loss=0.5  val_acc1=0.75  T"]
    cells = io.StringIO()
    sweep = CellProgress(3, stream=cells)
    sweep.cell("a")
    sweep.cell("b")
    sweep.cell("c")
    first, _, last = cells.getvalue().splitlines()
    assert re.fullmatch(r"\[1/3, ~\d+ s left\] a", first) and last == "[3/3] c"
