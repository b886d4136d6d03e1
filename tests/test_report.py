"""The report: the frame equals what real runs logged; honest grouping; tables by hand;
valid plot files; one self-contained HTML page; a `report` run; bad input exits 2."""

from __future__ import annotations

import base64
import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image

from mlbench.cli import main
from mlbench.config import RunConfig, TrackingConfig
from mlbench.options import param_text
from mlbench.report import build_report, load_runs, paired_comparison, summary_table
from mlbench.report.frame import FINAL_METRICS
from mlbench.report.plots import ACCURACY_SIZE, DPI
from mlbench.runs import run_prune
from tests.conftest import MLFLOW, REPO, TINY, clean_env
from tests.test_cli import fails
from tests.test_sweep import sweep_argv

STRATEGIES = ("global_weight", "layer_weight")


@dataclass
class Store:
    uri: str
    folder: Path
    sweep_ids: list[str]  # the 8 prune runs of the sweep
    other_recipe: str  # a prune run fine-tuned with another lr
    duplicate: str  # the same cell as a sweep run, run again
    tuned: list[str]  # prune runs tagged as made from a tuned configuration
    failed: str
    running: str


def _prune(uri: str, again: bool = False, **overrides: object) -> str:
    cfg = RunConfig.from_flat({**TINY, **overrides})
    run_prune(cfg, TrackingConfig(tracking_uri=uri, experiment="mlbench"), again=again)
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(ids, "tags.`mlbench.stage` = 'prune'", max_results=1,
                                order_by=["attributes.start_time DESC"])
    return run.info.run_id


def _crashed(client: MlflowClient, like: str, status: str) -> str:
    """A prune run as a crash leaves it: the cell's params, no final metrics."""
    source = client.get_run(like)
    run = client.create_run(source.info.experiment_id, run_name="crashed",
                            tags={"mlbench.stage": "prune"})
    for key in ("dataset", "model", "strategy", "compression", "seed", "lr"):
        client.log_param(run.info.run_id, key, source.data.params[key])
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A real sweep (2 strategies x 2 compressions x 2 seeds) plus the awkward cases."""
    folder = tmp_path_factory.mktemp("report-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # MLflow's default artifact root is ./mlruns
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        argv = sweep_argv(strategies=",".join(STRATEGIES), compressions="2,4", seeds="0,1")
        assert main([*argv, "--tracking-uri", uri, "--experiment", "mlbench"]) == 0
        client = MlflowClient(uri)
        ids = [e.experiment_id for e in client.search_experiments()]
        sweep_ids = [r.info.run_id for r in client.search_runs(ids, "tags.`mlbench.stage` = "
                                                                    "'prune'")]
        other = _prune(uri, strategy="global_weight", compression=4.0, seed=0, lr=0.1)
        duplicate = _prune(uri, again=True, strategy="layer_weight", compression=2.0, seed=1)
        tuned = []
        for seed in (0, 1):  # what the tuner does: its best config, tagged, over seeds
            run_id = _prune(uri, strategy="layer_weight", compression=4.0, seed=seed, lr=0.05)
            client.set_tag(run_id, "mlbench.tuned", "true")
            client.set_tag(run_id, "mlbench.tune_run_id", "study-layer_weight")
            tuned.append(run_id)
        by_strategy = {client.get_run(i).data.params["strategy"]: i for i in sweep_ids}
        failed = _crashed(client, by_strategy["global_weight"], "FAILED")
        running = _crashed(client, by_strategy["layer_weight"], "RUNNING")
    return Store(uri, folder, sweep_ids, other, duplicate, tuned, failed, running)


@pytest.fixture(scope="module")
def report(store: Store, tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(store.folder)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        return build_report(["mlbench"], tmp_path_factory.mktemp("report"),
                            tracking_uri=store.uri, svg=True)


# -- the frame --------------------------------------------------------------------------
def test_the_frame_is_what_the_runs_logged(store: Store):
    df = load_runs(["mlbench"], tracking_uri=store.uri).set_index("run_id")
    client = MlflowClient(store.uri)
    assert len(df) == 8 + 1 + 1 + 2 + 2
    versions = {mv.run_id: f"{mv.name}/{mv.version}"
                for mv in client.search_model_versions("name = 'mlbench-synthetic-lenet'")}
    for run_id in [*store.sweep_ids, store.other_recipe, store.duplicate, *store.tuned]:
        run, row = client.get_run(run_id), df.loc[run_id]
        assert row["status"] == run.info.status == "FINISHED"
        assert row["run_name"] == run.info.run_name
        for key, value in run.data.params.items():
            assert param_text(row[key]) == value or float(row[key]) == float(value), key
        for key in FINAL_METRICS:
            column = "compression_measured" if key == "compression" else key
            logged = run.data.metrics[key]  # NaN: speed not measured (issue 19's cost cap)
            assert row[column] == logged or (math.isnan(row[column]) and math.isnan(logged)), key
        assert row["delta_acc1"] == run.data.metrics["acc1"] - run.data.metrics["base_acc1"]
        assert row["compression"] == float(run.data.params["compression"])  # the target
        assert row["seed"] == int(run.data.params["seed"])
        assert row["base_model"] == versions[run.data.params["base_run_id"]]
        assert row["config_hash"] == run.data.tags["mlbench.config_hash"]
        assert row["tuned"] == (run_id in store.tuned)
    assert df.loc[store.tuned[0], "tune_run_id"] == "study-layer_weight"
    assert df.loc[store.failed, "status"] == "FAILED"
    assert df.loc[store.running, "status"] == "RUNNING"
    assert math.isnan(df.loc[store.failed, "acc1"])


def test_filters_and_several_experiments(store: Store):
    df = load_runs(["mlbench,Default"], "params.strategy = 'layer_weight'",
                   tracking_uri=store.uri)
    assert set(df["strategy"]) == {"layer_weight"}
    assert set(df["experiment"]) == {"mlbench"}
    assert len(df) == 4 + 1 + 2 + 1  # sweep, duplicate, tuned, the crashed RUNNING one


# -- honest grouping --------------------------------------------------------------------
def test_failed_unfinished_and_duplicate_runs_are_left_out_and_counted(store: Store, report):
    usable = report.usable
    assert usable.left_out == {"FAILED": 1, "RUNNING": 1, "duplicate": 1}
    used = set(usable.runs["run_id"])
    assert store.failed not in used and store.running not in used
    # of the two runs of one cell, only the later counts: no seed counted twice
    cell = usable.runs[(usable.runs["strategy"] == "layer_weight") & ~usable.runs["tuned"]
                       & (usable.runs["compression"] == 2.0) & (usable.runs["seed"] == 1)]
    assert list(cell["run_id"]) == [store.duplicate]
    page = report.html.read_text()
    assert "Left out of every number below: 1 FAILED, 1 RUNNING, 1 duplicate" in page


def test_runs_fine_tuned_differently_are_never_averaged_together(store: Store, report):
    runs, summary = report.usable.runs, summary_table(report.usable.runs)
    main_recipe = runs.loc[runs["run_id"] == store.sweep_ids[0], "recipe"].item()
    other = runs.loc[runs["run_id"] == store.other_recipe].iloc[0]
    assert other["recipe"] != main_recipe
    row = summary[(summary["recipe"] == main_recipe) & (summary["strategy"] == "global_weight")
                  & (summary["compression"] == 4.0)].iloc[0]
    sweep = runs[runs["run_id"].isin(store.sweep_ids) & (runs["strategy"] == "global_weight")
                 & (runs["compression"] == 4.0)]
    assert row["n_seeds"] == 2 and row["acc1_mean"] == pytest.approx(sweep["acc1"].mean())
    alone = summary[summary["recipe"] == other["recipe"]]
    assert list(alone["n_seeds"]) == [1] and alone["acc1_mean"].item() == other["acc1"]
    # tuned runs form their own group, apart from the untuned ones
    tuned = summary[summary["tuned"]]
    assert list(tuned["n_seeds"]) == [2] and tuned["group"].item().startswith("tuned-")
    page = report.html.read_text()
    assert "2 different fine-tuning recipes, shown apart and never averaged together" in page
    assert "lr=0.1" in page and "lr=0.03" in page


# -- tables, checked by hand ------------------------------------------------------------
def _known() -> pd.DataFrame:
    rows = []
    acc = {("a", 0): 0.90, ("a", 1): 0.80, ("a", 2): 0.70, ("b", 0): 0.85, ("b", 1): 0.70,
           ("b", 2): 0.60, ("c", 0): 0.50, ("c", 1): 0.90}
    for (strategy, seed), acc1 in acc.items():
        rows.append({"dataset": "d", "model": "m", "group": "g", "recipe": "g",
                     "strategy": strategy, "compression": 4.0, "seed": seed, "tuned": False,
                     "acc1": acc1, "acc5": 1.0, "base_acc1": 0.95})
    df = pd.DataFrame(rows)
    df["delta_acc1"] = df["acc1"] - df["base_acc1"]
    return df


def test_summary_means_and_spreads_by_hand():
    summary = summary_table(_known(), ("acc1", "delta_acc1")).set_index("strategy")
    assert summary.loc["a", "n_seeds"] == 3
    assert summary.loc["a", "acc1_mean"] == pytest.approx(0.8)
    assert summary.loc["a", "acc1_std"] == pytest.approx(0.1)  # sqrt((.01+0+.01)/2)
    assert summary.loc["b", "acc1_mean"] == pytest.approx(0.71666667)
    assert summary.loc["b", "acc1_std"] == pytest.approx(0.12583057)
    assert summary.loc["c", "acc1_std"] == pytest.approx(math.sqrt(0.08))  # (.5, .9)
    assert summary.loc["a", "delta_acc1_mean"] == pytest.approx(-0.15)


def test_paired_comparison_by_hand_and_says_when_seeds_are_too_few():
    cmp = paired_comparison(_known(), ("acc1",)).set_index(["a", "b"])
    ab = cmp.loc[("a", "b")]  # per-seed differences .05, .10, .10
    assert ab["n_pairs"] == 3
    assert ab["diff_mean"] == pytest.approx(0.25 / 3)
    assert ab["diff_std"] == pytest.approx(math.sqrt(0.05 ** 2 / 3))
    half = 4.302652729911275 * ab["diff_std"] / math.sqrt(3)  # t(0.975, 2 dof)
    assert ab["ci_low"] == pytest.approx(0.25 / 3 - half)
    assert ab["verdict"] == "a better"
    ac = cmp.loc[("a", "c")]  # seeds 0 and 1 only: c never ran seed 2
    assert ac["n_pairs"] == 2 and ac["diff_mean"] == pytest.approx(0.15)
    assert ac["verdict"] == "too few seeds to tell (n=2, need 3)"
    assert math.isnan(ac["ci_low"])


def test_no_clear_difference_when_the_interval_holds_zero():
    df = _known()
    df.loc[(df["strategy"] == "b") & (df["seed"] == 2), "acc1"] = 0.95  # diffs .05 .1 -.25
    (verdict,) = paired_comparison(df, ("acc1",)).query("a == 'a' and b == 'b'")["verdict"]
    assert verdict == "no clear difference"


# -- plots and page ---------------------------------------------------------------------
def test_every_plot_file_is_a_valid_image_of_its_size(store: Store, report):
    stems = {p.path.stem for p in report.plots}
    # speed and cost figures where a run measured its speed (within its cost cap: a busy
    # machine can leave these tiny runs none)
    measured = load_runs(["mlbench"], tracking_uri=store.uri)["measured_speedup"].notna().any()
    assert {s.rsplit("-", 1)[1] for s in stems} == {
        "accuracy", "delta", "layers", "tuned", *(("speed", "cost") if measured else ())}
    assert len(report.plots) == 2 * len(stems)  # PNG and SVG of each (svg=True)
    for plot in report.plots:
        if plot.path.suffix == ".png":
            assert plot.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            with Image.open(plot.path) as image:
                image.verify()
            with Image.open(plot.path) as image:
                assert image.size == (plot.width, plot.height)
        else:
            root = ET.parse(plot.path).getroot()
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert float(root.get("width").removesuffix("pt")) == plot.width * 72 / DPI
            assert float(root.get("height").removesuffix("pt")) == plot.height * 72 / DPI
        if plot.path.stem.endswith(("-accuracy", "-delta")):
            assert (plot.width, plot.height) == tuple(v * DPI for v in ACCURACY_SIZE)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.sources.append(values["src"] or "")
        for key in ("href", "src"):
            if values.get(key) and tag != "img":
                self.links.append(values[key] or "")


def test_the_html_page_embeds_every_plot(report):
    parser = _Images()
    parser.feed(report.html.read_text(encoding="utf-8"))
    pngs = sorted(p.path for p in report.plots if p.path.suffix == ".png")
    assert len(parser.sources) == len(pngs)
    embedded = sorted(base64.b64decode(src.removeprefix("data:image/png;base64,"))
                      for src in parser.sources)
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert embedded == sorted(p.read_bytes() for p in pngs)
    assert parser.links == []  # nothing external: the page opens offline
    page = report.html.read_text()
    assert "too few seeds to tell (n=2, need 3)" in page
    assert "Summary: mean ± std over seeds" in page


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")
def test_the_html_page_renders_in_a_browser(report, tmp_path: Path):
    shot = tmp_path / "page.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1200,3000",
                    report.html.as_uri()], capture_output=True, timeout=120, check=True)
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        colours = image.convert("RGB").resize((60, 150)).getcolors(9000)
    assert len(colours) > 50  # the plots drew: not a blank page


def test_the_files_are_written_and_logged_as_a_report_run(store: Store, report):
    names = {p.name for p in report.folder.iterdir()}
    assert {"report.html", "runs.csv", "summary.csv", "summary.md", "comparison.csv",
            "comparison.md", "plots"} <= names
    runs_csv = pd.read_csv(report.folder / "runs.csv")
    assert len(runs_csv) == report.runs_read == 14
    summary_md = (report.folder / "summary.md").read_text()
    assert summary_md.startswith("| dataset | model | group | strategy | compression | n_seeds")
    client = MlflowClient(store.uri)
    run = client.get_run(report.run_id)
    assert run.data.tags["mlbench.stage"] == "report"
    assert run.data.metrics["runs_used"] == len(report.usable.runs) == 11
    assert run.data.metrics["runs_left_out"] == 3
    logged = {a.path for a in client.list_artifacts(report.run_id)}
    assert {"report.html", "summary.csv", "comparison.md", "plots"} <= logged
    plots = {a.path for a in client.list_artifacts(report.run_id, "plots")}
    assert plots == {f"plots/{p.path.name}" for p in report.plots}


# -- the command ------------------------------------------------------------------------
def test_the_report_command(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    code = main(["report", "--tracking-uri", store.uri, "--experiment", "mlbench",
                 "--experiment", "Default", "--output", str(out), "--log", "false",
                 "--layers-at", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "14 prune runs read, 11 used, left out: 1 FAILED, 1 RUNNING, 1 duplicate" in printed
    assert "logged as" not in printed
    assert (out / "report.html").exists()
    assert "layer&#x27;s weights kept at 2×" in (out / "report.html").read_text()
    written = {p.suffix for p in (out / "plots").iterdir()}
    assert written == {".png"}  # SVGs only with --svg: the page embeds the PNGs


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--experiment", "nope"], "unknown experiment 'nope' in sqlite:///"),
        (["--experiment", "Default"], "no prune runs in experiment(s) Default"),
        (["--filter", "params.dataset = 'cifar10'"],
         "no prune runs in any experiment matching \"params.dataset = 'cifar10'\""),
        (["--filter", "params.dataset ~ 'x'"], "--filter \"params.dataset ~ 'x'\": "),
    ],
)
def test_nothing_to_report_is_one_line_and_exit_2(store: Store, argv, expected, tmp_path,
                                                  capsys):
    """Unknown or empty experiments, a filter that matches nothing or does not parse."""
    line = fails(["report", "--tracking-uri", store.uri, "--output", str(tmp_path / "o"),
                  *argv], capsys)
    assert line.startswith("mlbench report: error: ")
    assert expected in line
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_a_missing_store_is_reported_not_created(tmp_path: Path, capsys):
    missing = tmp_path / "nowhere.db"
    line = fails(["report", "--tracking-uri", f"sqlite:///{missing}"], capsys)
    assert f"no such sqlite file {missing}" in line
    assert not missing.exists()


@pytest.mark.slow
def test_mlflow_run_of_the_report_entry_point(store: Store, tmp_path: Path):
    proc = subprocess.run(
        [MLFLOW, "run", str(REPO), "-e", "report", "--env-manager", "local",
         "-P", f"output={tmp_path / 'out'}", "-P", "experiment=mlbench"],
        cwd=tmp_path, env=clean_env(store.uri), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "report.html").exists()
    client = MlflowClient(store.uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, "tags.`mlflow.project.entryPoint` = 'report'")
    (run,) = runs
    assert run.data.tags["mlbench.stage"] == "report"
    assert run.info.status == "FINISHED"
    assert "report.html" in {a.path for a in client.list_artifacts(run.info.run_id)}
