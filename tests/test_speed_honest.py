"""Issue 19, points 3 and 4: measured speedup with its interval, one speedup convention."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch
from torch import nn

from mlbench.metrics import layer_table, smaller_network_ops
from mlbench.models import classifier_name
from mlbench.report.convention import speedup_column
from mlbench.speed import (
    MIN_PAIRS,
    NO_SPEEDUP,
    compare,
    describe,
    measured_speedup,
    ratio_interval,
    speed_verdict,
)
from mlbench.structured import prune_channels

CPU = torch.device("cpu")


def test_an_interval_that_includes_one_is_reported_as_no_measurable_speedup():
    # paired samples of two equal models: ratios scatter around 1
    est, lo, hi = ratio_interval([1.00, 1.10, 0.95, 1.02], [1.03, 1.00, 1.00, 1.01])
    assert lo < 1 < hi and lo < est < hi
    assert speed_verdict(lo, hi) == NO_SPEEDUP
    est, lo, hi = ratio_interval([2.0, 2.1, 1.9], [1.0, 1.02, 0.98])  # clearly faster
    assert speed_verdict(lo, hi) == "faster" and 1.9 < est < 2.1
    assert speed_verdict(*ratio_interval([1.0, 1.0, 1.0], [2.0, 2.1, 1.9])[1:]) == "slower"
    line = describe({"measured_speedup": 1.01, "measured_speedup_lo": 0.97,
                     "measured_speedup_hi": 1.05, "measured_speedup_throughput": 0.99})
    assert line == ("measured speedup batch 1: 1.01 [0.97, 1.05] no measurable speedup; "
                    "batch: 0.99 [nan, nan] no measurable speedup")  # no interval: none


def test_dense_against_itself_is_logged_with_its_interval_and_flag(lenet):
    m = measured_speedup(lenet, copy.deepcopy(lenet), (1, 8, 8), 16, CPU)
    for suffix in ("", "_throughput"):
        lo, est, hi = (m[f"measured_speedup{suffix}{k}"] for k in ("_lo", "", "_hi"))
        assert lo <= est <= hi
        # the flag logged is what the interval says, never a guess from the estimate
        assert m[f"measurable_speedup{suffix}"] == float(not lo <= 1 <= hi)
    assert m["speed_threads"] == torch.get_num_threads()
    assert lenet.training  # timing runs in eval mode and gives the mode back


def test_a_much_smaller_network_is_measurably_faster(lenet):
    tiny = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    r = compare(lenet, tiny, (1, 8, 8), 1, CPU, max_pairs=8)
    assert r.verdict() == "faster" and r.measurable and r.lo > 1
    assert r.pairs >= MIN_PAIRS and r.calls >= 1


def test_the_cost_cap_holds_before_an_interval_and_threads_are_fixed(lenet):
    before = torch.get_num_threads()
    m = measured_speedup(lenet, copy.deepcopy(lenet), (1, 8, 8), 16, CPU, budget_s=0.0,
                         threads=1)
    # no time left: after one warm-up call each, nothing more is timed
    assert m["speed_pairs"] == 0 and m["speed_pairs_throughput"] == 0
    assert math.isnan(m["measured_speedup"]) and math.isnan(m["measured_speedup_lo"])
    assert m["measurable_speedup"] == 0.0
    assert describe(m).startswith("measured speedup batch 1: not measured")
    assert m["speed_threads"] == 1 and m["speed_budget_seconds"] == 0.0
    r = compare(lenet, copy.deepcopy(lenet), (1, 8, 8), 1, CPU)  # no cap: an interval
    assert r.pairs >= MIN_PAIRS and r.lo <= r.estimate <= r.hi
    assert torch.get_num_threads() == before  # given back


def test_a_channel_pruned_network_carries_the_papers_speedup_convention(lenet):
    shape = (1, 8, 8)
    pruned = prune_channels(lenet, "global_l1_channel", 2.0, shape, classifier_name(lenet)).model
    ops = smaller_network_ops(lenet, layer_table(pruned, {}, shape), shape)
    assert ops["macs_conv_linear_nz"] < ops["macs_conv_linear"]
    assert ops["speedup_conv_linear"] == pytest.approx(
        ops["macs_conv_linear"] / ops["macs_conv_linear_nz"])
    assert ops["speedup_conv_linear"] > 1


def test_runs_without_the_papers_speedup_are_named_never_silently_replaced(capsys):
    runs = pd.DataFrame({"run_id": ["a1", "b2", "c3"],
                         "speedup": [2.0, 3.0, 4.0],
                         "speedup_conv_linear": [2.1, None, 4.2]})
    assert speedup_column(runs, "figure x") == "speedup_conv_linear"
    err = capsys.readouterr().err
    assert "1 run(s) without speedup_conv_linear" in err and "b2" in err and "a1" not in err
    assert speedup_column(runs.drop(columns="speedup_conv_linear"), "figure y") == "speedup"
    assert "no run logged speedup_conv_linear" in capsys.readouterr().err
    assert speedup_column(runs.fillna(3.1), "z") == "speedup_conv_linear"
    assert capsys.readouterr().err == ""
    speedup_column(runs, "figure x")  # the same question again: said once, not twice
    assert capsys.readouterr().err == ""


def test_the_speed_figure_draws_intervals_and_hollow_points_for_no_measurable_speedup():
    from matplotlib.collections import LineCollection

    from mlbench.report.speed_plots import speed_figure

    runs = pd.DataFrame({
        "run_id": ["m", "c"], "strategy": ["global_weight", "global_l1_channel"],
        "speedup": [4.0, 3.5], "speedup_conv_linear": [4.1, 3.6], "acc1": [0.9, 0.85],
        "measured_speedup": [1.01, 2.5], "measured_speedup_lo": [0.97, 2.3],
        "measured_speedup_hi": [1.05, 2.7],
    })
    left, right = speed_figure(runs, "t").axes
    bars = [c for c in left.collections if isinstance(c, LineCollection)]
    assert len(bars) == 2  # one interval per run
    points = {float(c.get_offsets()[0][0]): len(c.get_facecolor()) for c in left.collections
              if not isinstance(c, LineCollection) and len(c.get_offsets())}
    assert points == {4.1: 0, 3.6: 1}  # the masked run (interval holds 1) hollow, no face
    assert left.get_xlabel().startswith("theoretical speedup, conv + linear")
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert any("no measurable speedup" in t for t in labels)


def _panel(channel_gain: float) -> pd.DataFrame:
    rows = []
    for seed in range(4):
        for c in (2, 4, 8):
            acc = 0.9 - 0.02 * c + 0.001 * seed
            rows.append({"run_id": f"u{seed}{c}", "dataset": "d", "model": "m",
                         "strategy": "global_weight", "compression": c, "seed": seed,
                         "speedup_conv_linear": float(c), "measured_speedup": 1.0,
                         "measured_speedup_lo": 0.97, "measured_speedup_hi": 1.03,
                         "acc1": acc})
            rows.append({"run_id": f"c{seed}{c}", "dataset": "d", "model": "m",
                         "strategy": "global_l1_channel", "compression": c, "seed": seed,
                         "speedup_conv_linear": c * 0.9, "measured_speedup": c * 0.6,
                         "measured_speedup_lo": c * 0.55, "measured_speedup_hi": c * 0.65,
                         "acc1": acc + channel_gain + 0.0003 * seed * c})
    return pd.DataFrame(rows)


def test_structured_is_judged_at_equal_theoretical_speedup_and_equal_accuracy():
    from mlbench.report.findings._core import CONTRADICTED, SUPPORTED, Context
    from mlbench.report.findings._structure import (
        structured_beats_unstructured,
        structured_faster_at_equal_accuracy,
    )

    ctx = Context()
    better = structured_beats_unstructured(_panel(0.05), ctx)
    assert better.verdict == SUPPORTED
    assert "speedup: speedup_conv_linear" in better.evidence
    assert "unstructured median 1.00x (12 of 12 with no measurable speedup)" in better.evidence
    worse = structured_beats_unstructured(_panel(-0.05), ctx)
    assert worse.verdict == CONTRADICTED
    faster = structured_faster_at_equal_accuracy(_panel(0.05), ctx)
    assert faster.verdict == SUPPORTED and faster.comparisons
    assert all(c.mean > 0 for c in faster.comparisons)  # log2 speedup gained at equal acc


def test_the_tuned_figure_uses_the_papers_speedup_and_says_so():
    from mlbench.report.plots import tuned_figure
    from mlbench.report.tables import summary_table

    rows = []
    for tuned in (False, True):
        for seed in range(2):
            for c in (2, 4):
                rows.append({"run_id": f"{tuned}{seed}{c}", "dataset": "d", "model": "m",
                             "group": "t" if tuned else "u", "strategy": "global_weight",
                             "recipe": "r", "compression": c, "seed": seed, "tuned": tuned,
                             "acc1": 0.9, "acc5": 1.0, "delta_acc1": 0.0, "delta_acc5": 0.0,
                             "pre_acc1": 0.5, "base_acc1": 0.9, "base_acc5": 1.0,
                             "base_run_id": f"b{seed}", "compression_measured": c,
                             "speedup": c * 0.9, "speedup_conv_linear": float(c),
                             "params_nz": 100 / c})
    runs = pd.DataFrame(rows)
    summary = summary_table(runs)
    fig = tuned_figure(summary[summary["tuned"]], summary[~summary["tuned"]], runs, "t")
    assert fig.axes[1].get_xlabel().startswith("theoretical speedup, conv + linear")
