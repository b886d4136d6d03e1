"""Figures and a page a reader can read (issue 18, point 2): 16+ strategies keep distinct
styles grouped by kind, log axes label in plain decimals, wide tables wrap at 1400 px."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mlbench import catalog
from mlbench.report import html
from mlbench.report.plots import MARKERS, PALETTE, accuracy_figure, kind_of, save, styles
from mlbench.report.speed_plots import speed_figure
from mlbench.report.tables import summary_table

STRATEGIES = catalog.names("strategy")  # every registered one: 16 at the time of writing
COMPRESSIONS = (2.0, 4.0, 8.0, 16.0)


def _runs(strategies: tuple[str, ...] = STRATEGIES) -> pd.DataFrame:
    """Runs shaped like the report's frame: 2 seeds per (strategy, compression); measured
    speedups between 1.0 and 1.1, the range whose log ticks read ``1.025×10⁰``."""
    rows = []
    for s, strategy in enumerate(strategies):
        for c in COMPRESSIONS:
            for seed in (0, 1):
                acc1 = 0.95 - 0.002 * c * (1 + s / 10) + 0.001 * seed
                rows.append({"dataset": "mnist", "model": "lenet", "group": "g", "recipe": "g",
                             "strategy": strategy, "compression": c, "seed": seed,
                             "tuned": False, "acc1": acc1, "acc5": 0.99, "pre_acc1": acc1 - .1,
                             "base_acc1": 0.96, "base_acc5": 0.995, "base_run_id": f"b{seed}",
                             "compression_measured": c * 1.01, "speedup": c * 0.9,
                             "speedup_conv_linear": c, "params_nz": 1e5 / c,
                             "measured_speedup": 1.0 + 0.1 * (s / len(strategies)) + 0.01 * c
                             / 16, "train_epochs_total": 3})
    df = pd.DataFrame(rows)
    df["delta_acc1"] = df["acc1"] - df["base_acc1"]
    df["delta_acc5"] = df["acc5"] - df["base_acc5"]
    return df


def test_sixteen_or_more_strategies_get_distinct_colour_and_marker_pairs():
    names = [*STRATEGIES, *(f"{s}+gradual" for s in STRATEGIES), "x1", "x2"]
    assert len(STRATEGIES) >= 16
    style = styles(names)
    assert set(style) == set(names)
    pairs = [(s.colour, s.marker) for s in style.values()]
    assert len(set(pairs)) == len(pairs)  # 34 strategies, 34 pairs
    # every registered strategy has a colour of its own (the palette's 30 before repeats):
    # a channel strategy beside the baselines is never drawn in a baseline's colour
    assert len({style[s].colour for s in STRATEGIES}) == len(STRATEGIES) <= len(PALETTE)
    for name, s in style.items():  # the marker tells the kind
        assert s.marker in MARKERS[kind_of(name)]
    assert kind_of("global_l1_channel") == "channels" and kind_of("semi_2_4") == "n:m"
    assert kind_of("wanda_2_4") == "n:m" and kind_of("remove_heads") == "channels"
    assert styles(["global_weight"]) == {"global_weight": styles(STRATEGIES)["global_weight"]}


def test_the_accuracy_figure_draws_each_strategy_in_its_own_style():
    runs = _runs()
    fig = accuracy_figure(summary_table(runs), runs, "t")
    drawn = {(line.get_label(), line.get_color(), line.get_marker())
             for ax in fig.axes for line in ax.get_lines() if line.get_label() in STRATEGIES}
    assert {label for label, _, _ in drawn} == set(STRATEGIES)
    assert len({(colour, marker) for _, colour, marker in drawn}) == len(STRATEGIES)


def _tick_labels(fig, which: str = "x") -> list[str]:
    fig.canvas.draw()
    return [t.get_text() for ax in fig.axes for t in
            (ax.get_xticklabels() if which == "x" else ax.get_yticklabels()) if t.get_text()]


def test_narrow_log_axes_label_plain_decimals():
    fig = speed_figure(_runs(), "measured speed")
    labels = _tick_labels(fig, "x") + _tick_labels(fig, "y")
    assert labels and not [t for t in labels if "10^" in t or "10^{" in t or "\\times" in t]
    measured = [t for t in _tick_labels(fig, "x")[-10:] if t.startswith("1.")]
    assert measured  # e.g. 1.02×, 1.04×: the narrow axis has decimal ticks
    assert all(re.fullmatch(r"\d+(\.\d+)?×", t) for t in labels if t.endswith("×"))


def _page(tmp_path: Path) -> Path:
    """The report's page as build_report assembles it: 16-strategy figures and a wide
    findings-like table whose evidence column holds long sentences."""
    runs = _runs()
    section = html.Section("mnist / lenet")
    for stem, fig in (("accuracy", accuracy_figure(summary_table(runs), runs, "accuracy")),
                      ("speed", speed_figure(runs, "measured speed"))):
        png = save(fig, tmp_path / "plots", stem)[0].path
        section.figures.append(html.Plot(png, stem))
    evidence = ("global_weight − layer_weight at 4×: +0.0123 (95% CI +0.0051 to +0.0195, "
                "p_holm 0.004, 3 seeds, 41 of 10,000 test images differ); ") * 4
    findings = pd.DataFrame([{"claim": f"claim {i}", "verdict": "supported",
                              "evidence": evidence, "compressions": "2, 4, 8, 16, 32, 64",
                              "seeds needed": 5, "notes": evidence} for i in range(4)])
    section.tables.append(("Verdicts", findings, True))
    page = tmp_path / "report.html"
    page.write_text(html.render("mlbench report", ["meta"], [], [section]), encoding="utf-8")
    return page


@pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("chromedriver") is None,
                    reason="no chromium / chromedriver (apt-get install chromium "
                    "chromium-driver)")
def test_the_page_fits_a_1400_px_screen_in_a_browser(tmp_path: Path):
    from PIL import Image
    from selenium import webdriver

    page = _page(tmp_path)
    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--window-size=1400,2000"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        driver.get(page.as_uri())
        width = driver.execute_script("return window.innerWidth")
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        # nor inside a table's scroll box: every table fits the text column
        overflowing = driver.execute_script(
            "return [...document.querySelectorAll('.scroll')]"
            ".filter(d => d.scrollWidth > d.clientWidth).length")
        assert overflowing == 0
        shot = tmp_path / "page-1400.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    with Image.open(shot) as image:
        assert image.size[0] == 1400
        assert len(image.convert("RGB").resize((70, 100)).getcolors(7000)) > 50  # plots drew
