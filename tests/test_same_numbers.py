"""What issue 17 must not change: four runs give the numbers recorded before the refactor.

A one-shot, an iterative, a gradual and a channel run on digits (seed 3, a few epochs,
one sqlite store) against ``tests/fixtures/same_numbers.json``: identical metrics,
bit-identical masks (and, for the channel run, pruned weights), the same run hash (so
existing stores find their runs), and ``load_pruned`` rebuilds the same networks.
"""

from __future__ import annotations

import json

from tests._same_numbers import FIXTURE, record


def test_four_runs_give_the_recorded_numbers_and_masks(tmp_path):
    expected = json.loads(FIXTURE.read_text())
    got = record(tmp_path)
    for name, want in expected.items():
        assert got[name]["metrics"] == want["metrics"], name
        assert got[name]["digest"] == want["digest"], f"{name}: masks differ"
        assert got[name]["model_digest"] == want["model_digest"], f"{name}: weights differ"
        assert got[name]["config_hash"] == want["config_hash"], f"{name}: run hash differs"
