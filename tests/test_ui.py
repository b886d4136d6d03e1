"""The MLflow UI shows a sweep well: children nested under the sweep, acc1 and compression.

A real `mlflow server`, a real sweep through the CLI, and the experiment page in headless
Chromium driven the way a user would: expand the sweep row, tick two metric columns.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from mlbench.cli import main
from tests.conftest import MLFLOW, REPO, TINY, clean_env, tiny_argv
from tests.test_sweep import all_runs, sweep_argv

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 90  # generous: the page loads its bundle once, on a CPU shared with the sweep
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium (the Debian packages `chromium`, `chromium-driver`)."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=2000,1000"):  # wide: the grid only renders visible columns
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def artifact_dir(tmp_path: Path) -> Path:
    """Where tests leave files for people to look at: $MLBENCH_TEST_ARTIFACTS or tmp_path."""
    folder = Path(os.environ.get("MLBENCH_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; raises if the file is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def cell(driver: webdriver.Chrome, run_id: str, column: str) -> WebElement | None:
    """The grid cell of one run (rows carry the run id) in one column, once rendered."""
    found = driver.find_elements(
        By.CSS_SELECTOR, f'.ag-row[row-id="{run_id}"] .ag-cell[col-id="{column}"]')
    return found[0] if found else None


def metric_column_node(driver: webdriver.Chrome, key: str) -> WebElement | None:
    """The column selector's entry for metric ``key`` (a param may share the name)."""
    nodes = driver.find_elements(By.CSS_SELECTOR, "[role=dialog] .du-bois-light-tree-treenode")
    titles = [n.text for n in nodes]
    starts = [i for i, title in enumerate(titles) if title.startswith("Metrics (")]
    if not starts:
        return None
    for node, title in zip(nodes[starts[0] + 1:], titles[starts[0] + 1:], strict=True):
        if title == key:
            return node
        if title.endswith(")"):  # the next section ("Parameters (42)")
            return None
    return None


def show_metric_columns(driver: webdriver.Chrome, wait: WebDriverWait, *keys: str) -> None:
    """Tick metric columns in the "Columns" menu, as a user would."""
    driver.find_element(By.CSS_SELECTOR, '[data-testid="column-selection-dropdown"]').click()
    for key in keys:
        wait.until(lambda d, k=key: metric_column_node(d, k)).find_element(
            By.CSS_SELECTOR, ".du-bois-light-tree-checkbox").click()
        wait.until(lambda d, k=key: "checkbox-checked" in _class_of(metric_column_node(d, k)))
    driver.find_element(By.CSS_SELECTOR, '[data-testid="column-selection-dropdown"]').click()


def _class_of(element: WebElement | None) -> str:
    try:
        return (element.get_attribute("class") or "") if element else ""
    except StaleElementReferenceException:  # the menu re-rendered: look again
        return ""


def rendered_text(driver: webdriver.Chrome, run_id: str, column: str) -> str:
    """The visible text of a cell ('' while not rendered)."""
    try:
        found = cell(driver, run_id, column)
        return found.text.strip() if found else ""
    except StaleElementReferenceException:
        return ""


@pytest.mark.slow
def test_the_experiment_page_shows_each_cell_with_acc1_and_compression(
        mlflow_server, tmp_path, browser, capsys):
    argv = sweep_argv(strategies="global_weight,random", compressions="2,4", seeds="0")
    queue = f"journal:{tmp_path / 'optuna.journal'}"  # with a server, the queue is ours to place
    assert main([*argv, "--tracking-uri", mlflow_server, "--storage", queue]) == 0
    (sweep,) = all_runs(mlflow_server, "sweep")
    children = {r.info.run_id: r for r in all_runs(mlflow_server, "prune")}
    assert sorted(r.info.run_name for r in children.values()) == [
        "global_weight-c2-s0", "global_weight-c4-s0", "random-c2-s0", "random-c4-s0"]
    experiment = sweep.info.experiment_id

    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=[StaleElementReferenceException])
    shot = artifact_dir(tmp_path) / "mlflow-ui-sweep.png"
    try:
        browser.get(f"{mlflow_server}/#/experiments/{experiment}/runs")
        name = "attributes.`Run Name`"
        wait.until(lambda d: sweep.info.run_name in rendered_text(d, sweep.info.run_id, name))
        # children sit collapsed under their sweep run: not rows until it is expanded
        assert all(cell(browser, i, name) is None for i in children)
        for button in browser.find_elements(By.CSS_SELECTOR, "button[data-component-id="
                                            "'mlflow.assistant.chat_panel.close']"):
            button.click()  # the assistant side panel only takes room from the table
        cell(browser, sweep.info.run_id, name).find_element(By.TAG_NAME, "button").click()
        for run_id, run in children.items():
            wait.until(lambda d, i=run_id, n=run.info.run_name: n in rendered_text(d, i, name))

        show_metric_columns(browser, wait, "acc1", "compression")
        for run_id, run in children.items():
            for key in ("acc1", "compression"):
                column = f"metrics.`{key}`"
                wait.until(lambda d, i=run_id, c=column: rendered_text(d, i, c))
                shown = rendered_text(browser, run_id, column)
                # the page shows the stored value in full (e.g. 0.5833333333333334, 4)
                assert float(shown) == run.data.metrics[key], (run.info.run_name, key, shown)
    finally:
        browser.save_screenshot(str(shot))
        with capsys.disabled():
            print(f"\nscreenshot of the MLflow UI: {shot}")
    width, height = png_size(shot)
    assert width >= 1000 and height >= 500
    compare_mlflow_run_and_cli(mlflow_server, tmp_path, browser, wait)


BOOLEANS = ("amp", "augment", "download", "nesterov", "base_nesterov", "prune_classifier",
            "compile")


def compare_mlflow_run_and_cli(server: str, tmp_path: Path, browser: webdriver.Chrome,
                               wait: WebDriverWait) -> None:
    """One recipe by `mlflow run .` and by the CLI: the compare view shows one value per
    boolean param (no `true` against `True`), and both runs sit in one experiment."""
    # a cell the sweep above did not run, by the CLI first: a CLI `prune` of a
    # configuration that already FINISHED prints that run instead of making another
    recipe = {**TINY, "strategy": "random", "compression": 3}
    assert main(["prune", *tiny_argv(strategy="random", compression=3.0),
                 "--tracking-uri", server]) == 0
    argv = [MLFLOW, "run", str(REPO), "--env-manager", "local"]
    for key, value in recipe.items():
        argv += ["-P", f"{key}={value}"]
    proc = subprocess.run(argv, cwd=tmp_path, env=clean_env(server), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [r for r in all_runs(server, "prune") if r.info.run_name == "random-c3-s0"
            and "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 2 and len({r.info.experiment_id for r in runs}) == 1
    ids = ",".join(f'"{r.info.run_id}"' for r in runs)
    browser.get(f'{server}/#/compare-runs?runs=[{ids}]&experiments=["{runs[0].info.experiment_id}"]')
    for key in BOOLEANS:
        row = f"//tr[th[normalize-space()='{key}']]/td"
        wait.until(lambda d, r=row: len(d.find_elements(By.XPATH, r)) == 2)
        shown = {c.text.strip() for c in browser.find_elements(By.XPATH, row)}
        assert shown in ({"true"}, {"false"}), (key, shown)
    browser.save_screenshot(str(artifact_dir(tmp_path) / "mlflow-ui-compare.png"))
