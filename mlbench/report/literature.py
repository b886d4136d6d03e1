"""Published pruning results (the paper's meta-analysis data) beside mlbench's own.

``results.csv`` is Blalock et al.'s spreadsheet of 551 results from 81 papers (MIT; a
copy ships in ``mlbench/report/_literature``). Its cells are strings as typed ("93.55%",
"0.7700", empty); ``read_literature`` turns them into numbers and derives, for each
result, what the report plots, always from the paper's own numbers:

- ``delta_acc1`` / ``delta_acc5``: change in top-1 / top-5 from the paper's own dense
  model (dTop1; else Top1 - OrigTop1, either one read as 1 - Err1 where only the error
  is given), as a fraction;
- ``compression``: old/new Nparam; else 1 / (1 - savedParams); else 1 / keptParams;
  else OrigMParams / MParams;
- ``speedup``: old/new FLOPS; else the same from savedFLOPS, keptFLOPS, GFLOPS.

Model names map to mlbench's (``LITERATURE_MODELS``); rows of other models are kept
with ``model`` empty. On MNIST the spreadsheet's "LeNet-5" is the network of Han et al.
2015 (conv 20, conv 50, fc 500: 431K parameters, "OrigMParams" 0.430), which is
mlbench's ``lenet5_caffe``, not its small ``lenet``.

Published speedups are each paper's own FLOP count (some count multiply-adds, some
conv layers only, some the whole model): they are not mlbench's convention
(``SPEEDUP_CONVENTION``), and every label that shows them says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

BUNDLED = Path(__file__).with_name("_literature") / "results.csv"

# (Dataset, Model) as the spreadsheet spells them -> (dataset, model) as mlbench does.
LITERATURE_MODELS: dict[tuple[str, str], tuple[str, str]] = {
    ("MNIST", "LeNet-300-100"): ("mnist", "mlp"),
    ("MNIST", "LeNet-5-Caffe"): ("mnist", "lenet5_caffe"),
    ("MNIST", "LeNet-5"): ("mnist", "lenet5_caffe"),  # Han et al.'s 431K-parameter LeNet-5
    ("CIFAR-10", "ResNet-20"): ("cifar10", "resnet20"),
    ("CIFAR-10", "ResNet-32"): ("cifar10", "resnet32"),
    ("CIFAR-10", "ResNet-56"): ("cifar10", "resnet56"),
    ("CIFAR-10", "ResNet-110"): ("cifar10", "resnet110"),
    ("CIFAR-10", "VGG-16"): ("cifar10", "vgg16_bn"),
    ("ImageNet", "ResNet-18"): ("imagenet", "resnet18"),
    ("ImageNet", "ResNet-34"): ("imagenet", "resnet34"),
    ("ImageNet", "ResNet-50"): ("imagenet", "resnet50"),
    ("ImageNet", "ResNet-101"): ("imagenet", "resnet101"),
    ("ImageNet", "VGG-16"): ("imagenet", "vgg16"),
    ("ImageNet", "AlexNet"): ("imagenet", "alexnet"),
    ("ImageNet", "SqueezeNet"): ("imagenet", "squeezenet1_0"),
}
SPEEDUP_CONVENTION = "each paper's own FLOP convention"
COLUMNS = ["paper", "method", "lit_dataset", "lit_model", "dataset", "model", "acc1",
           "delta_acc1", "delta_acc5", "compression", "speedup"]


def parse_number(text: object) -> float:
    """A spreadsheet cell as a number: ``"93.55%"`` -> 0.9355, ``"0.7700"`` -> 0.77.

    Empty cells, NaN and text that is not a number give NaN.

    Example:
        >>> parse_number("-0.180%"), parse_number("14.70"), parse_number("")
        (-0.0018, 14.7, nan)
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return math.nan
    s = str(text).strip().replace(",", "")
    scale = 1.0
    if s.endswith("%"):
        s, scale = s[:-1].strip(), 0.01
    try:
        return round(float(s) * scale, 12)
    except ValueError:
        return math.nan


def read_literature(path: str | Path | None = None) -> pd.DataFrame:
    """The published results as numbers, one row per reported result (``COLUMNS``).

    Args:
        path: a ``results.csv`` of the paper's layout (default: the bundled copy).
    """
    raw = pd.read_csv(path or BUNDLED, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    num = {c: raw[c].map(parse_number) for c in raw.columns if c not in
           ("Name", "Paper", "Dataset", "Model", "Method", "Notes")}
    mapped = [LITERATURE_MODELS.get((d, m), ("", "")) for d, m in zip(raw["Dataset"],
                                                                      raw["Model"], strict=True)]
    out = pd.DataFrame({
        "paper": raw["Paper"], "method": raw["Method"], "lit_dataset": raw["Dataset"],
        "lit_model": raw["Model"], "dataset": [d for d, _ in mapped],
        "model": [m for _, m in mapped],
        "acc1": num["Top1"].fillna(1 - num["Err1"]),
        "delta_acc1": _delta(num, "1"), "delta_acc5": _delta(num, "5"),
        "compression": _ratio(num, "Nparam", "savedParams", "keptParams", "MParams",
                              "OrigMParams"),
        "speedup": _ratio(num, "FLOPS", "savedFLOPS", "keptFLOPS", "GFLOPS", "OrigGFLOPS"),
    })
    return out[COLUMNS]


def _delta(num: dict[str, pd.Series], k: str) -> pd.Series:
    """dTop-k; else (Top-k or 1 - Err-k) minus (OrigTop-k or 1 - OrigErr-k)."""
    top = num[f"Top{k}"].fillna(1 - num[f"Err{k}"])
    orig = num[f"OrigTop{k}"].fillna(1 - num[f"OrigErr{k}"])
    return num[f"dTop{k}"].fillna(top - orig)


def _ratio(num: dict[str, pd.Series], old_new: str, saved: str, kept: str, size: str,
           orig: str) -> pd.Series:
    ratio = num[f"old/new {old_new}"]
    ratio = ratio.fillna(1 / (1 - num[saved].where(num[saved] < 1)))
    ratio = ratio.fillna(1 / num[kept].where(num[kept] > 0))
    return ratio.fillna(num[orig] / num[size].where(num[size] > 0))


def published_points(literature: pd.DataFrame, dataset: str, model: str) -> pd.DataFrame:
    """The results of one mlbench (dataset, model) with a change in top-1 to plot."""
    rows = literature[(literature["dataset"] == dataset) & (literature["model"] == model)]
    return rows[rows["delta_acc1"].notna() & (rows["compression"].notna()
                                               | rows["speedup"].notna())]


def coverage(literature: pd.DataFrame, dataset: str, model: str) -> str:
    """One sentence: what the literature holds for this pair, and what can be plotted."""
    rows = literature[(literature["dataset"] == dataset) & (literature["model"] == model)]
    if rows.empty:
        return (f"The paper's literature data has no results for {dataset} / {model}: "
                "nothing published to overlay.")
    names = ", ".join(sorted(set(rows["lit_model"])))
    points = published_points(literature, dataset, model)
    with_acc = int(rows["delta_acc1"].notna().sum())
    if points.empty:
        return (f"The paper's literature data has {len(rows)} result(s) for {dataset} / "
                f"{names} from {rows['paper'].nunique()} paper(s); {with_acc} give a change "
                "in top-1, none together with a compression or speedup: nothing to overlay.")
    return (f"Published: {len(points)} of {len(rows)} result(s) for {dataset} / {names} "
            f"from {points['paper'].nunique()} paper(s) give a change in top-1 with a "
            "compression or speedup; shown as change from each paper's own dense model, "
            f"published speedups in {SPEEDUP_CONVENTION} (not mlbench's).")


def points_display(points: pd.DataFrame) -> pd.DataFrame:
    """The published points as a table people read (Δ in points, ratios with ×)."""
    def fmt(v: float, pattern: str) -> str:
        return "–" if pd.isna(v) else pattern.format(v)

    return pd.DataFrame({
        "paper": points["paper"],
        "method": points["method"].replace("", "–"),
        "model (as published)": points["lit_model"],
        "Δ top-1 (points)": [fmt(100 * v, "{:+.2f}") for v in points["delta_acc1"]],
        "compression": [fmt(v, "{:.2f}×") for v in points["compression"]],
        f"speedup ({SPEEDUP_CONVENTION})": [fmt(v, "{:.2f}×") for v in points["speedup"]],
    }).sort_values(["paper", "compression"]).reset_index(drop=True)
