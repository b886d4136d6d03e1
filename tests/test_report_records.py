"""The report's layout, findings and published points, on a store written from run records
(no sweep): the glance tables first, the findings second, the figures after; the sqlite
reader returns what MLflow's search returns."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.report_speed import fill
from mlbench.report import build_report, summary_table, usable_runs
from mlbench.report.build import load_runs
from mlbench.report.findings import CLAIMS
from mlbench.report.plots import accuracy_figure, layers_figure
from mlbench.tracking import _query


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """digits / lenet and cifar10 / resnet20: 5 strategies x 5 compressions x 3 seeds."""
    folder = tmp_path_factory.mktemp("records")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    fill(uri, folder, seeds=3)
    return uri, folder


@pytest.fixture(scope="module")
def report(store, tmp_path_factory: pytest.TempPathFactory):
    uri, _ = store
    return build_report(["mlbench"], tmp_path_factory.mktemp("out"), tracking_uri=uri,
                        log=False)


def test_the_sqlite_reader_returns_what_mlflow_returns(store, monkeypatch):
    uri, _ = store
    fast = _query.query_prune_runs(uri, ["mlbench"])
    monkeypatch.setattr(_query, "_from_sqlite", lambda *args: None)
    slow = _query.query_prune_runs(uri, ["mlbench"])

    def norm(records):
        return sorted(({**r, "metrics": {k: None if math.isnan(v) else v
                                         for k, v in r["metrics"].items()}}
                       for r in records), key=lambda r: r["run_id"])

    assert len(fast.runs) == 150
    assert norm(fast.runs) == norm(slow.runs)
    assert sorted(fast.bases, key=str) == sorted(slow.bases, key=str)
    assert fast.experiments == slow.experiments


def test_glance_first_findings_second_figures_after(report):
    page = report.html.read_text(encoding="utf-8")
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[:2] == ["At a glance", "Findings: the paper&#x27;s claims on these runs"]
    first_figure = page.index("<figure>")
    assert page.index("<h2>At a glance") < page.index("<h2>Findings") < first_figure
    glance = page[page.index("<h2>At a glance"):page.index("<h2>Findings")]
    assert glance.count("<table") == 2  # one per (dataset, model)
    assert "cifar10 / resnet20: test top-1" in glance


def test_findings_are_written_and_shown(report):
    table = pd.read_csv(report.folder / "findings.csv")
    pair_claims = [n for n in CLAIMS.names() if CLAIMS.meta(n)["scope"] == "pair"]
    assert len(table) == 2 * len(pair_claims) + (len(CLAIMS) - len(pair_claims))
    assert set(table["verdict"]) <= {"supported", "contradicted", "inconclusive",
                                     "not testable on this model"}
    assert (report.folder / "findings.md").read_text().startswith("| claim | runs | verdict")
    comparisons = pd.read_csv(report.folder / "findings-comparisons.csv")
    assert {"p", "p_holm", "ci_low", "ci_high"} <= set(comparisons.columns)
    assert (comparisons["p_holm"].dropna() >= comparisons["p"].dropna()).all()


def test_published_points_beside_ours_and_pairs_without_say_so(report):
    page = report.html.read_text(encoding="utf-8")
    assert "Published results overlaid" in page
    assert "no results for digits / lenet: nothing published to overlay" in page
    assert "hollow markers: published results" in page


def test_figures_mark_the_classifier_and_end_at_the_data(store):
    uri, _ = store
    runs = usable_runs(load_runs(["mlbench"], tracking_uri=uri)).runs
    runs = runs[runs["dataset"] == "cifar10"]
    published = pd.DataFrame({"paper": ["p1", "p2"], "delta_acc1": [-0.01, 0.0],
                              "delta_acc5": [math.nan] * 2, "compression": [3.0, math.nan],
                              "speedup": [math.nan, 40.0]})
    fig = accuracy_figure(summary_table(runs), runs, "t", delta=True, published=published)
    compression_ax, speedup_ax = fig.axes[0], fig.axes[1]
    low, high = compression_ax.get_xlim()
    assert low == pytest.approx(runs["compression_measured"].min() / 1.05)
    assert high == pytest.approx(runs["compression_measured"].max() * 1.05)
    assert speedup_ax.get_xlim()[1] == pytest.approx(40.0 * 1.05)  # a published point
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "published: p1" in labels and "published: p2" in labels
    table = pd.DataFrame({"name": ["conv1", "fc"], "shape": ["6x1x5x5", "10x84"],
                          "params": [156, 850], "density": [0.25, 1.0]})
    ticks = [t.get_text() for t in layers_figure({"global_weight": table}, 4.0, "t",
                                                 classifier="fc").axes[0].get_xticklabels()]
    assert ticks == ["conv1\n156", "fc (classifier, not prunable)\n850"]


def test_the_findings_command(store, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from mlbench.cli import main

    uri, _ = store
    assert main(["findings", "--tracking-uri", uri, "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| claim | runs | verdict | evidence | what would settle it |")
    assert "random pruning is the worst strategy" in out and "cifar10 / resnet20" in out
    assert {p.name for p in tmp_path.iterdir()} == {
        "findings.csv", "findings.md", "findings-comparisons.csv"}
    assert main(["findings", "--tracking-uri", uri, "--filter",
                 "params.dataset = 'nothing'"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mlbench findings: error: no finished prune runs in the store matching "
                   "\"params.dataset = 'nothing'\"; run `mlbench sweep` first"]
