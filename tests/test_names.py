"""Run names (mlbench/names.py): every cell of a grid has a name of its own in the run list."""

from __future__ import annotations

import dataclasses

from mlbench.config import RunConfig
from mlbench.grid import Grid, parse_grid
from mlbench.names import prune_run_name
from mlbench.presets import load_preset
from mlbench.recipe import run_name
from mlbench.sweep._items import CellItem, key
from mlbench.sweep._run import _label
from tests.conftest import REPO


def test_a_calibration_seed_but_the_default_is_in_the_name():
    assert prune_run_name("wanda", 2.0, 0) == "wanda-c2-s0"
    assert prune_run_name("wanda", 2.0, 1, calib_seed=2) == "wanda-c2-s1-cal2"
    assert prune_run_name("wanda", 2.0, 1, calib_seed=2, tuned=True) == "wanda-c2-s1-cal2-tuned"
    cfg = RunConfig.from_flat({"strategy": "wanda", "compression": 2.0, "seed": 1})
    assert run_name(cfg) == "wanda-c2-s1"  # the default calibration seed: the name it had
    other = dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, calib_seed=3))
    assert run_name(other) == "wanda-c2-s1-cal3"


def test_every_cell_of_the_post_training_presets_has_its_own_name():
    for name in ("shakespeare-chargpt", "mnist-vit"):
        preset = load_preset(REPO / "projects" / f"{name}.yaml")
        grid = parse_grid({k: v for k, v in preset.items()
                           if k in {f.name for f in dataclasses.fields(Grid)}})
        cells = grid.cells(RunConfig())
        assert len(grid.calib_seeds) > 1 and len(cells) > 50
        names = [run_name(c) for c in cells]
        assert len(set(names)) == len(names), name
        # the sweep's log names a cell as its run is named
        labels = [_label(key(CellItem.of(c))) for c in cells]
        assert labels == names
