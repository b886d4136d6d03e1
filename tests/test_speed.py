"""Measured speed: what is logged and how (never how fast: figures live in benchmarks/)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlbench.cli import main
from mlbench.speed import (
    SEMI_STRUCTURED_REASON,
    is_two_four,
    measured_speedup,
    semi_structured_supported,
    to_semi_structured,
)
from tests.conftest import tiny_argv

CUDA_24 = torch.cuda.is_available() and semi_structured_supported(torch.device("cuda"))


def test_measured_speedup_reports_raw_times_ratios_and_threads(lenet):
    small = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    m = measured_speedup(lenet, small, (1, 8, 8), 16, torch.device("cpu"), max_pairs=3)
    # issue 19: geometric mean of interleaved pairs, inside its 95% interval
    assert m["measured_speedup_lo"] <= m["measured_speedup"] <= m["measured_speedup_hi"]
    assert m["measured_speedup_throughput_lo"] <= m["measured_speedup_throughput"]
    assert m["speed_threads"] == torch.get_num_threads()
    assert all(m[k] > 0 for k in ("latency_ms", "base_latency_ms", "speed_seconds"))
    assert lenet.training  # timing runs in eval mode and gives the mode back


def test_two_four_pattern_check():
    w = torch.tensor([[1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0]])
    assert is_two_four(w)
    w[0, 1] = 5.0
    assert not is_two_four(w)
    assert not is_two_four(torch.ones(2, 6))  # rows do not split into fours


def test_semi_2_4_below_its_pattern_floor_is_refused_before_any_work(tmp_path, capsys):
    code = main(["prune", *tiny_argv(strategy="semi_2_4", compression=1.1),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert code == 2
    assert "below what semi_2_4 needs" in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists()


@pytest.mark.skipif(not CUDA_24, reason=SEMI_STRUCTURED_REASON)
def test_semi_structured_linear_matches_its_dense_masked_twin():
    torch.manual_seed(0)
    layer = nn.Linear(128, 128).half().cuda()
    with torch.no_grad():
        groups = layer.weight.view(-1, 4)
        groups[:, :2] = 0  # 2:4
    x = torch.randn(64, 128, device="cuda", dtype=torch.half)
    expected = layer(x)
    model, converted = to_semi_structured(nn.Sequential(layer), torch.device("cuda"))
    assert converted == 1
    assert torch.allclose(model(x), expected, atol=1e-2, rtol=1e-2)


def test_speed_plots_draw_one_point_per_run_and_the_diagonal():
    import pandas as pd

    from mlbench.report.speed_plots import cost_figure, has_speed, speed_figure

    runs = pd.DataFrame({
        "strategy": ["global_weight", "global_l1_channel", "global_weight+iterative"],
        "speedup": [4.0, 3.5, 4.0],
        "measured_speedup": [1.0, 2.5, 0.98],
        "acc1": [0.9, 0.85, 0.91],
        "train_epochs_total": [25, 25, 25],
    })
    assert has_speed(runs)
    fig = speed_figure(runs, "t")
    left, right = fig.axes
    assert sum(len(c.get_offsets()) for c in left.collections) == 3
    (diagonal,) = left.get_lines()
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata())  # measured = theoretical
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert "global_l1_channel (channels)" in labels and "global_weight (masked)" in labels
    assert sum(len(c.get_offsets()) for c in right.collections) == 3
    (ax,) = cost_figure(runs, "t").axes
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3
    assert not has_speed(runs.assign(measured_speedup=float("nan")))


def test_the_report_frame_names_a_schedule_beside_its_strategy():
    from mlbench.report.frame import runs_frame

    def run(schedule: str | None) -> dict:
        params = {"strategy": "global_weight", "compression": "4", "seed": "0"}
        if schedule:
            params["prune_schedule"] = schedule
        return {"run_id": schedule or "old", "run_name": "r", "experiment": "e",
                "status": "FINISHED", "start_time": 0, "params": params,
                "metrics": {"acc1": 0.9, "measured_speedup": 1.0}, "tags": {}}

    df = runs_frame([run(None), run("oneshot"), run("gradual")])
    assert list(df["strategy"]) == ["global_weight", "global_weight", "global_weight+gradual"]
    assert list(df["measured_speedup"]) == [1.0, 1.0, 1.0]
