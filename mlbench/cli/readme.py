"""Write the README's generated blocks: ``python -m mlbench.cli.readme`` (``--check``).

Every README block that shows real output, or states a conclusion, sits between
``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` and is written here, from the
code itself (``list``, bad-input lines, presets, defaults; the report's against a small
store made in /tmp/mlbench-readme) or from a committed record
(``docs/mnist/`` and ``docs/transformers/``: ``findings.md``, the verdicts of those
runs, and ``record.json``, how they were made). Conclusions are the verdicts themselves,
quoted, never stronger. tests/test_readme.py fails while a block is stale, as the
MLproject check does.

    python -m mlbench.cli.readme                  # rewrite README.md
    python -m mlbench.cli.readme --check          # exit 1, naming the stale blocks
    python -m mlbench.cli.readme --rerun NAME     # remake a long run's record, then README

Long runs (a sweep, a tuning study, a benchmark) are quoted from ``docs/records/``;
``--rerun`` runs their commands again (minutes) and rewrites the record.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from mlbench.options import param_text

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- end: (?P=name) -->)", re.S)


def _run(argv: list[str]) -> str:
    """``$ python -m mlbench ARGV`` and what it prints (stdout, then stderr), in process."""
    from mlbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          contextlib.suppress(SystemExit)):
        main(argv)
    shown = " ".join(a if " " not in a else f'"{a}"' for a in argv)
    return f"$ python -m mlbench {shown}\n{out.getvalue()}{err.getvalue()}"


MAIN_OPTIONS = ("strategy", "compression", "dataset", "data_dir", "download", "model", "seed",
                "epochs", "lr", "batch_size", "optimizer", "schedule", "weight_decay",
                "base_epochs", "base_lr", "prune_classifier", "prune_schedule",
                "tracking_uri", "experiment", "log_model", "device", "amp")


def main_options() -> str:
    """``prune``'s main options: flag, help and default, from the option schema."""
    from mlbench.catalog import names
    from mlbench.options import command_options

    options = {o.key: o for o in command_options("prune")}
    lines = ["| option | meaning | default |", "|---|---|---|"]
    for key in MAIN_OPTIONS:
        o = options[key]
        meaning = o.help.replace("|", "\\|")
        if key == "strategy":
            meaning += f" ({len(names('strategy'))} registered)"
        if key.startswith("base_"):
            meaning = f"the dense base model's {meaning}"
        elif key in ("epochs", "lr", "batch_size", "optimizer", "schedule", "weight_decay"):
            meaning = f"fine-tuning: {meaning}"
        default = "–" if o.default is None else f"`{param_text(o.default)}`"
        lines.append(f"| `{o.flag}` | {meaning} | {default} |")
    return "\n".join(lines) + "\n"


def cli_examples() -> str:
    """Bad input of ``prune`` and the ``list`` output."""
    runs = [["prune", "--compression", "30"],
            ["prune", "--dataset", "cifar10", "--data-dir", "/tmp/nothing"],
            ["list"]]
    return "```\n" + "".join(_run(a) for a in runs) + "```\n"


def tune_bad_input() -> str:
    """Bad input of ``tune``."""
    runs = [["tune", "--trials", "0"], ["tune", "--storage", "redis://localhost:6379"]]
    return "```\n" + "".join(_run(a) for a in runs) + "```\n"


def report_bad_input() -> str:
    """Bad input of ``report`` against a store holding one experiment, ``mlbench``.

    The store is made afresh in /tmp/mlbench-readme (the folder the commands run in, so
    the default store ``./mlflow.db`` is it) with one report run and no prune runs.
    """
    import os
    import shutil

    from mlbench.tracking import log_report, quiet

    folder = Path(tempfile.gettempdir()) / "mlbench-readme"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "empty").mkdir(parents=True)
    here, uri = Path.cwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        os.chdir(folder)
        quiet()
        log_report(f"sqlite:///{folder / 'mlflow.db'}", "mlbench", folder / "empty", {}, {})
        runs = [["report", "--experiment", "mlbnech"],
                ["report", "--filter", "params.dataset = 'cifar10'"]]
        return "```\n" + "".join(_run(a) for a in runs) + "```\n"
    finally:
        os.chdir(here)
        if uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = uri


def presets() -> str:
    """The presets in projects/, each with its comment's first line."""
    lines = []
    for path in sorted((REPO / "projects").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        first = next((ln.lstrip("# ").rstrip() for ln in text.splitlines()
                      if ln.startswith("#")), "")
        values = yaml.safe_load(text) or {}
        grid = f"{values.get('dataset', '?')} / {values.get('model', '?')}"
        first = re.sub(r"(<[^<>]+>)", r"`\1`", first)  # <data_dir> is no HTML tag
        lines.append(f"  - `{path.stem}` ({grid}): {first}")
    return "\n".join(lines) + "\n"


def tune_storage() -> str:
    """The default tuning storage and the dashboard command that reads it."""
    from mlbench.tuning._storage import JOURNAL, default_storage

    here = Path("/HERE")
    default = default_storage(f"sqlite:///{here / 'mlflow.db'}").replace(str(here), "$PWD")
    return (f"Default: `{default}`, a journal file beside the MLflow store (`{JOURNAL}` next "
            "to `mlflow.db`; in the current folder when the store is a server). `tune` "
            "prints the dashboard command for its storage when it ends; the file exists "
            "once a study has started, so run the dashboard after that:\n\n"
            f"```bash\noptuna-dashboard {default.removeprefix('journal:')}    "
            "# after `mlbench tune` has run\n```\n")


def notebook() -> str:
    """The notebook snippet: names and filter values as runs log them."""
    target = param_text(8.0)
    return ("```python\nfrom mlbench.report import load_runs, summary_table, usable_runs\n"
            f"df = load_runs([\"Default\"], \"params.compression = '{target}'\")   "
            "# MLflow's default experiment; params are text: 8 is '8'\n"
            'print(df.groupby("strategy")[["acc1", "speedup"]].mean().round(3))\n'
            "summary = summary_table(usable_runs(df).runs)              "
            "# the report's cut and table\n```\n")


def channel_example() -> str:
    """How close channel removal lands: layer allocation on digits' lenet at 4x (weights
    do not matter to it: every layer loses the same fraction of its channels)."""
    from mlbench.config import RunConfig
    from mlbench.models import classifier_name
    from mlbench.recipe import prepare
    from mlbench.structured import prune_channels

    cfg = RunConfig.from_flat({"strategy": "layer_l1_channel", "compression": 4.0})
    setup = prepare(cfg)
    dense = sum(p.numel() for p in setup.model.parameters())
    pruned = prune_channels(setup.model, cfg.prune.strategy, 4.0, setup.splits.info.input_shape,
                            classifier_name(setup.model), []).model
    ratio = dense / sum(p.numel() for p in pruned.parameters())
    return (f"For example, `layer_l1_channel` on digits' `{cfg.model}` at 4 lands at "
            f"{ratio:.2f} (layer allocation removes the same fraction of every layer's "
            "channels, whatever the weights); global allocation lands near it, where the "
            "scores put the channels.\n")


RECORDS = REPO / "docs" / "records"
# Output that takes a long run: quoted from docs/records/NAME.txt, which
# ``--rerun NAME`` remakes by running these commands (``python -m mlbench`` unless
# the first word is a file) in a fresh folder; only the last command's output is kept.
LONG_RUNS: dict[str, list[list[str]]] = {
    "sweep-digits": [["sweep", "--project", "projects/digits-lenet.yaml", "--strategies",
                      "global_weight,layer_grad", "--compressions", "1,4,16", "--seeds", "0",
                      "--workers", "2"]],
    "tune-digits": [["tune", "--project", "projects/digits-lenet.yaml", "--strategies",
                     "global_weight,layer_grad", "--trials", "8", "--seeds", "0,1"]],
    "report-digits": [["sweep", "--project", "projects/digits-lenet.yaml", "--compressions",
                       "1,2,4,8,16"], ["report", "--output", "report"]],
    "finetune-throughput": [["benchmarks/finetune_throughput.py", "--repeats", "10",
                             "--steady-malloc"]],
}


def record(name: str) -> str:
    """A long run's committed output (docs/records/NAME.txt) as a code block."""
    return "```\n" + (RECORDS / f"{name}.txt").read_text(encoding="utf-8") + "```\n"


def rerun(name: str) -> Path:
    """Run ``LONG_RUNS[name]`` in a fresh folder and write its output as the record."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory() as tmp:
        for argv in LONG_RUNS[name]:
            script = argv[0].endswith(".py")
            cmd = ([sys.executable, str(REPO / argv[0]), *argv[1:]] if script else
                   [sys.executable, "-m", "mlbench", *[str(REPO / a) if a.startswith(
                       "projects/") else a for a in argv]])
            done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  check=True)
        shown = f"python {' '.join(argv)}" if script else f"python -m mlbench {' '.join(argv)}"
    path = RECORDS / f"{name}.txt"
    path.write_text(f"$ {shown}\n{done.stdout}", encoding="utf-8")
    return path


def _rows(markdown: str) -> list[dict[str, str]]:
    """A Markdown table (the findings') as dicts; escaped pipes kept as text."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]]
             for ln in lines]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]


def claims_of(*modules: str) -> tuple[str, ...]:
    """The registered claims defined in ``mlbench/report/findings/<module>.py``, in
    registration order: what a set of runs tests, read from the code, not listed here."""
    from mlbench.report.findings import CLAIMS

    return tuple(n for n in CLAIMS.names()
                 if CLAIMS.get(n).__module__.rsplit(".", 1)[-1] in modules)


# the post-training claims: what the transformer presets test (the others have no runs
# of theirs there); the paper's claims and structured against unstructured: what the MNIST
# runs test (the at-init claim has runs of its own, quoted in its README section)
POSTTRAINING = claims_of("_calibrated_claims")
MNIST_CLAIMS = claims_of("_claims", "_structure")


def _statements(names: Sequence[str]) -> set[str]:
    from mlbench.report.findings import CLAIMS

    return {CLAIMS.meta(n)["statement"] for n in names}


def quoted_findings(folder: str, only: Sequence[str] = ()) -> str:
    """The committed verdicts in ``docs/<folder>/findings.md``, quoted as the findings
    command printed them (only the rows of the claims ``only``, if given)."""
    text = (DOCS / folder / "findings.md").read_text(encoding="utf-8")
    table = text.split("\nNotes:")[0].rstrip("\n") + "\n"
    if not only:
        return table
    keep = _statements(only)
    lines = table.splitlines()
    rows = [ln for ln in lines[2:] if _rows("\n".join([*lines[:2], ln]))[0]["claim"] in keep]
    return "\n".join([*lines[:2], *rows]) + "\n"


def conclusions(folder: str, only: Sequence[str] = ()) -> str:
    """What the verdicts in ``docs/<folder>`` say, sentence by sentence from its record
    (``record.json``: which runs, which recipe, which statistics): never stronger."""
    record = json.loads((DOCS / folder / "record.json").read_text(encoding="utf-8"))
    rows = _rows(quoted_findings(folder, only))
    by_verdict: dict[str, list[str]] = {}
    for row in rows:
        by_verdict.setdefault(row["verdict"], []).append(f"{row['claim']} ({row['runs']})")
    out = [f"Where these verdicts come from: {record['runs']} Fine-tuning recipe: "
           f"{record['recipe']}. Statistics: {record['statistics']}", ""]
    words = {"supported": "Supported (holds at every point it speaks of)",
             "contradicted": "Contradicted (significantly against somewhere)",
             "inconclusive": "Inconclusive (neither shown nor refuted by these runs)",
             "not testable on this model": "Not testable on this model"}
    for verdict, label in words.items():
        claims = by_verdict.get(verdict, [])
        out.append(f"- **{label}:** " + ("; ".join(claims) if claims else "none") + ".")
    out += ["", record["recipe_note"]]
    return "\n".join(out) + "\n"


def mnist_recipes() -> str:
    """The same comparisons under two fine-tuning recipes, side by side: the preset's
    (``docs/mnist/findings-comparisons.csv``) and the default one
    (``docs/mnist/recipe-default/``), at the compression both ran."""
    import csv

    def read(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
        with path.open(encoding="utf-8") as f:
            return {(r["where"], r["a"], r["b"]): r for r in csv.DictReader(f)
                    if r["scope"] == "mnist / mlp"
                    and r["claim"] in ("global_beats_layer", "random_is_worst")}

    preset = read(DOCS / "mnist" / "findings-comparisons.csv")
    default = read(DOCS / "mnist" / "recipe-default" / "findings-comparisons.csv")
    labels = [json.loads((DOCS / "mnist" / sub / "record.json").read_text(
        encoding="utf-8"))["recipe_short"] for sub in ("", "recipe-default")]

    def cell(r: dict[str, str]) -> str:
        return (f"{100 * float(r['mean']):+.2f} [{100 * float(r['ci_low']):+.2f}, "
                f"{100 * float(r['ci_high']):+.2f}]")

    out = [f"| at | a − b | preset recipe ({labels[0]}) | default recipe ({labels[1]}) | "
           "ratio (both intervals clear of 0) |", "|---|---|---|---|---|"]
    for key in (k for k in default if k in preset):
        a, b = preset[key], default[key]
        both = all(float(r["ci_low"]) > 0 or float(r["ci_high"]) < 0 for r in (a, b))
        ratio = f"{float(a['mean']) / float(b['mean']):.1f}" if both else "–"
        out.append(f"| {key[0]} | {key[1]} − {key[2]} | {cell(a)} | {cell(b)} | {ratio} |")
    return "\n".join(out) + "\n"


def transformers_perplexity() -> str:
    """Our perplexity changes at 50%, 2:4 and 4:8, from the committed
    ``docs/transformers/posttraining-ours.csv`` (the report's table)."""
    import csv

    with (DOCS / "transformers" / "posttraining-ours.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] in ("magnitude", "wanda",
                                                                 "sparsegpt")]
    out = ["| model | pattern | magnitude | Wanda | SparseGPT |", "|---|---|---|---|---|"]
    for (dataset, model, pattern) in dict.fromkeys(
            (r["dataset"], r["model"], r["pattern"]) for r in rows):
        cells = {r["method"]: r for r in rows if (r["dataset"], r["model"], r["pattern"])
                 == (dataset, model, pattern)}
        out.append(f"| {dataset} / {model} | {pattern} | " + " | ".join(
            f"{100 * float(cells[m]['ppl_change']):+.1f}% ± "
            f"{100 * float(cells[m]['ppl_change_std'] or 'nan'):.1f} ({cells[m]['runs']})"
            if m in cells else "–" for m in ("magnitude", "wanda", "sparsegpt")) + " |")
    return "\n".join(out) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    **{name: (lambda n=name: record(n)) for name in LONG_RUNS},
    "cli-examples": cli_examples,
    "presets": presets,
    "main-options": main_options,
    "channel-example": channel_example,
    "tune-storage": tune_storage,
    "tune-bad-input": tune_bad_input,
    "report-bad-input": report_bad_input,
    "mnist-findings": lambda: quoted_findings("mnist", MNIST_CLAIMS),
    "mnist-conclusions": lambda: conclusions("mnist", MNIST_CLAIMS),
    "transformers-findings": lambda: quoted_findings("transformers", POSTTRAINING),
    "transformers-conclusions": lambda: conclusions("transformers", POSTTRAINING),
    "transformers-perplexity": transformers_perplexity,
    "mnist-recipes": mnist_recipes,
    "mnist-glance": lambda: (DOCS / "mnist" / "glance.md").read_text(encoding="utf-8"),
    "mnist-at-init": lambda: (quoted_findings("mnist/at-init",
                                              ("at_init_layer_shuffle_does_not_hurt",))
                              + "\n" + (DOCS / "mnist" / "at-init" / "glance.md").read_text(
                                  encoding="utf-8")),
    "notebook": notebook,
}


def regenerate(text: str) -> tuple[str, list[str]]:
    """``text`` with every generated block rewritten, and the names of those that changed."""
    changed: list[str] = []

    def fresh(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in BLOCKS:
            raise KeyError(f"README block {name!r} has no generator; known: {', '.join(BLOCKS)}")
        body = BLOCKS[name]()
        if body != m["body"]:
            changed.append(name)
        return f"{m.group(1)}{body}{m.group(4)}"

    return BLOCK.sub(fresh, text), changed


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite README.md (or, with ``--check``, exit 1 naming the stale blocks)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--rerun" in args:
        name = args[args.index("--rerun") + 1] if args.index("--rerun") + 1 < len(args) else ""
        if name not in LONG_RUNS:
            print(f"mlbench.cli.readme: error: --rerun needs one of {', '.join(LONG_RUNS)}, "
                  f"got {name!r}", file=sys.stderr)
            return 2
        print(f"written: {rerun(name)}")
    text = README.read_text(encoding="utf-8")
    new, changed = regenerate(text)
    if "--check" in args:
        for name in changed:
            print(f"README.md block {name!r} is stale: run `python -m mlbench.cli.readme`")
        return 1 if changed else 0
    if new != text:
        README.write_text(new, encoding="utf-8")
    print(f"README.md: {len(changed)} block(s) rewritten{': ' if changed else ''}"
          f"{', '.join(changed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
