"""The report build shows the post-training section where the store holds runs of
calibrated strategies, and nothing of it where it holds none: stores written from run
records (MlflowClient, no sweep), read back by ``build_report``."""

from __future__ import annotations

import csv
import itertools
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from mlbench.config import RunConfig, config_hash
from mlbench.report import build_report, paired_comparison, summary_table
from mlbench.report.calibrated import PUBLISHED

CALIBRATED = ("pt_magnitude", "wanda", "sparsegpt", "wanda_2_4", "remove_heads")


def _layers(path: Path, density: float) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "type", "shape", "params", "nonzero", "density", "macs",
                         "macs_nz"])
        for name in ("blocks.0.attn.q", "blocks.0.mlp.fc", "head"):
            d = 1.0 if name == "head" else density
            writer.writerow([name, "Linear", "64x64", 4096, round(4096 * d), d, 4096,
                             4096 * d])


def _run(client: MlflowClient, experiment: str, folder: Path, values: dict[str, object],
         metrics: dict[str, float]) -> None:
    """One FINISHED prune run with the pipeline's params, hash tag and layers.csv."""
    cfg = RunConfig().flat() | values
    run = client.create_run(experiment, run_name=f"{values['strategy']}-{values['seed']}",
                            tags={"mlbench.stage": "prune",
                                  "mlbench.config_hash": config_hash(cfg)})
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id, [Metric(k, float(v), now, 0) for k, v in metrics.items()],
                     [Param(k, str(v)) for k, v in cfg.items()])
    _layers(folder / "layers.csv", 1 / float(values["compression"]))
    target = Path(run.info.artifact_uri)  # a local artifact store is a folder
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "layers.csv", target / "layers.csv")
    client.set_terminated(run.info.run_id, "FINISHED")


def _store(folder: Path, calibrated: bool) -> str:
    """digits / lenet runs of two baselines; with ``calibrated`` also shakespeare / chargpt
    runs of post-training strategies at 20% and 50% over 3 base and 2 calibration seeds."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("mlbench", artifact_location=str(folder / "art"))
    for strategy, c, seed in itertools.product(("global_weight", "random"), (2.0, 4.0),
                                               range(3)):
        acc = 0.95 - 0.02 * c - (0.05 if strategy == "random" else 0)
        _run(client, experiment, folder,
             {"dataset": "digits", "model": "lenet", "strategy": strategy, "compression": c,
              "seed": seed},
             {"acc1": acc + 0.001 * seed, "acc5": 0.99, "loss": 0.3, "base_acc1": 0.96,
              "base_acc5": 1.0, "pre_acc1": 0.5, "pre_acc5": 0.9, "compression": c,
              "params": 1000, "params_nz": 1000 / c, "macs": 1e5, "macs_nz": 1e5 / c,
              "flops": 2e5, "flops_nz": 2e5 / c, "speedup": c})
    if not calibrated:
        return uri
    for strategy, c, seed, calib in itertools.product(CALIBRATED, (1.25, 2.0), range(3),
                                                      range(2)):
        if strategy.endswith("_2_4") and c != 2.0:
            continue
        bpc = 3.3 + 0.2 * (c - 1) + 0.01 * seed + 0.005 * calib
        _run(client, experiment, folder,
             {"dataset": "shakespeare", "model": "chargpt", "strategy": strategy,
              "compression": c, "seed": seed, "calib_seed": calib, "epochs": 0},
             {"acc1": 0.34 - 0.05 * (c - 1), "acc5": 0.7, "loss": bpc * 0.6931,
              "bpc": bpc, "base_bpc": 3.3, "base_acc1": 0.35, "base_acc5": 0.7,
              "pre_acc1": 0.34 - 0.05 * (c - 1), "pre_acc5": 0.7, "compression": 1.5,
              "params": 110_000, "params_nz": 70_000, "macs": 8e6, "macs_nz": 5e6,
              "flops": 1.6e7, "flops_nz": 1e7, "speedup": 1.6})
    return uri


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    out = {}
    for calibrated in (True, False):
        folder = tmp_path_factory.mktemp(f"store-{calibrated}")
        uri = _store(folder, calibrated)
        out[calibrated] = build_report([], folder / "report", tracking_uri=uri, log=False)
    return out


def test_calibrated_runs_get_their_panels_and_the_published_table(reports):
    report = reports[True]
    folder = report.folder
    for metric in ("acc1", "loss"):
        png = folder / "plots" / f"posttraining-shakespeare-chargpt-{metric}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in [p.path for p in report.plots]
    ours = pd.read_csv(folder / "posttraining-ours.csv")
    wanda = ours[(ours["method"] == "wanda") & (ours["pattern"] == "50%")].iloc[0]
    # bpc at 50% is 3.3 + 0.2 + 0.01 * seed + 0.005 * calib over 3 x 2 runs; base 3.3
    expected = sum(2 ** (0.2 + 0.01 * s + 0.005 * k) - 1
                   for s in range(3) for k in range(2)) / 6
    assert wanda["runs"] == 6 and wanda["ppl_change"] == pytest.approx(expected)
    assert set(ours["pattern"]) == {"50%", "2:4"}  # 2:4 is its own row, heads are not 50%
    published = pd.read_csv(folder / "posttraining-published.csv")
    assert len(published) == sum(len(m) for _, _, p in PUBLISHED for m in p.values())
    page = report.html.read_text(encoding="utf-8")
    section = page[page.index("<h2>Post-training pruning of transformers"):]
    assert "OTHER MODELS" in section and "LLaMA-2-7B" in section
    assert section.count("<figure>") == 2
    # after the findings and every CNN panel: beside them, not before
    assert page.index("<h2>digits / lenet") < page.index("<h2>Post-training")


def test_no_calibrated_runs_no_section_and_no_files(reports):
    report = reports[False]
    assert not list(report.folder.rglob("posttraining-*"))
    assert "Post-training pruning" not in report.html.read_text(encoding="utf-8")
    assert all("posttraining" not in p.path.name for p in report.plots)


def test_calibration_seeds_of_one_base_seed_count_once_in_tables():
    """Several calibration seeds on one base seed: the seed's mean, never extra seeds."""
    runs = pd.DataFrame([
        {"dataset": "d", "model": "m", "group": "g", "strategy": s, "recipe": "r",
         "compression": 2.0, "seed": seed, "calib_seed": k, "tuned": False,
         "run_id": f"{s}{seed}{k}", "acc1": base + 0.1 * seed + 0.02 * k, "acc5": 1.0}
        for s, base in (("wanda", 0.5), ("pt_magnitude", 0.4)) for seed in range(3)
        for k in range(2)])
    summary = summary_table(runs, ("acc1",)).set_index("strategy")
    assert summary.loc["wanda", "n_seeds"] == 3
    seed_means = [0.5 + 0.1 * s + 0.01 for s in range(3)]
    assert summary.loc["wanda", "acc1_mean"] == pytest.approx(sum(seed_means) / 3)
    assert summary.loc["wanda", "acc1_std"] == pytest.approx(pd.Series(seed_means).std())
    cmp = paired_comparison(runs, ("acc1",)).iloc[0]
    sign = 1 if cmp["a"] == "wanda" else -1
    assert cmp["n_pairs"] == 3 and sign * cmp["diff_mean"] == pytest.approx(0.1)
