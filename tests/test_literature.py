"""The paper's published results: the real spreadsheet parsed into numbers, mapped to
mlbench's names; pairs without numbers say so."""

from __future__ import annotations

import math

import pytest

from mlbench.report.literature import (
    BUNDLED,
    coverage,
    parse_number,
    points_display,
    published_points,
    read_literature,
)
from tests.conftest import SHARED_DATA

SHARED = SHARED_DATA / "literature" / "shrinkbench-existing-results"
REAL = SHARED / "results.csv"


@pytest.fixture(scope="module")
def literature():
    if not REAL.is_file():
        pytest.skip(f"the paper's results.csv is not at {REAL}")
    return read_literature(REAL)


def test_the_bundled_copy_is_the_shared_file():
    if not REAL.is_file():
        pytest.skip(f"the paper's results.csv is not at {REAL}")
    assert BUNDLED.read_bytes() == REAL.read_bytes()
    assert (BUNDLED.parent / "LICENSE").read_bytes() == (SHARED / "LICENSE").read_bytes()


@pytest.mark.parametrize(("text", "value"), [
    ("93.55%", 0.9355), ("-0.180%", -0.0018), ("0.7700", 0.77), ("14.70", 14.7),
    (" 2.000 ", 2.0), ("", math.nan), ("???", math.nan), (None, math.nan)])
def test_spreadsheet_strings_become_numbers(text: object, value: float):
    got = parse_number(text)
    assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value)


def test_every_result_is_read(literature):
    assert len(literature) == 551  # the data's README: 551 reported results
    assert literature["paper"].nunique() > 70
    counts = literature.groupby(["dataset", "model"]).size()
    assert counts[("imagenet", "vgg16")] == 61 and counts[("imagenet", "resnet50")] == 43
    assert counts[("cifar10", "resnet56")] == 32
    # "LeNet-5" (12 rows) and "LeNet-5-Caffe" (14) are both Han et al.'s 431K network
    assert counts[("mnist", "lenet5_caffe")] == 26 and counts[("mnist", "mlp")] == 12
    assert ("mnist", "lenet") not in counts  # mlbench's small lenet is no published model


def test_han_et_al_lenet5_is_lenet5_caffe(literature):
    han = literature[(literature["paper"] == "han-prune-quant-huff")
                     & (literature["lit_model"] == "LeNet-5")]
    assert len(han) and set(han["model"]) == {"lenet5_caffe"}


def _row(literature, paper: str, method: str = ""):
    rows = literature[(literature["paper"] == paper) & (literature["method"] == method)
                      & (literature["model"] == "resnet56")]
    return rows.iloc[0]


def test_each_way_the_papers_report_a_result(literature):
    # dTop1 given; kept params / FLOPs as percentages
    pfa = _row(literature, "apple-pfa", "PFA-En")
    assert pfa["delta_acc1"] == pytest.approx(-0.0018)
    assert pfa["compression"] == pytest.approx(1 / 0.615)
    assert pfa["speedup"] == pytest.approx(1 / 0.699)
    # only the errors and model sizes: 6.92% error against 93.14% dense, 0.1273M of 0.85M
    lc = literature[(literature["paper"] == "learning-compression")
                    & (literature["model"] == "resnet56")].iloc[0]
    assert lc["delta_acc1"] == pytest.approx((1 - 0.0692) - 0.9314)
    assert lc["compression"] == pytest.approx(0.85 / 0.1273)
    # Top1 and OrigTop1 with a FLOPs saving
    amc = _row(literature, "amc-automl-han")
    assert amc["delta_acc1"] == pytest.approx(0.919 - 0.928)
    assert amc["speedup"] == pytest.approx(2.0)


def test_pairs_with_points_and_pairs_without(literature):
    points = published_points(literature, "cifar10", "resnet56")
    assert len(points) == 28 and points["delta_acc1"].notna().all()
    assert coverage(literature, "cifar10", "resnet56").startswith("Published: 28 of 32")
    shown = points_display(points)
    assert list(shown.columns) == ["paper", "method", "model (as published)",
                                   "Δ top-1 (points)", "compression",
                                   "speedup (each paper's own FLOP convention)"]
    assert "each paper's own FLOP convention (not mlbench's)" in coverage(
        literature, "cifar10", "resnet56")
    assert "-0.18" in set(shown["Δ top-1 (points)"]) | {""}
    # MNIST: 12 LeNet-300-100 rows, one with a change in top-1 and no compression
    assert published_points(literature, "mnist", "mlp").empty
    assert "12 result(s)" in coverage(literature, "mnist", "mlp")
    assert "nothing to overlay" in coverage(literature, "mnist", "lenet5_caffe")
    assert "no results for digits / lenet" in coverage(literature, "digits", "lenet")
