"""The README's generated blocks are current (as the MLproject files are), and its
conclusions are the committed verdicts, quoted, never stronger."""

from __future__ import annotations

import re

import pytest

from mlbench.cli import readme
from tests.conftest import REPO


def test_every_generated_block_of_the_readme_is_current():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    names = re.findall(r"<!-- generated: ([\w-]+) -->", text)
    assert set(names) == set(readme.BLOCKS)  # every generator has its block, and back
    _, stale = readme.regenerate(text)
    assert stale == [], f"stale README block(s) {stale}: run `python -m mlbench.cli.readme`"


def test_a_stale_block_is_found_and_rewritten():
    text = "a\n<!-- generated: presets -->\n  - `old-preset`\n<!-- end: presets -->\nb\n"
    new, stale = readme.regenerate(text)
    assert stale == ["presets"]
    assert "`mnist-lenet300` (mnist / mlp)" in new and "old-preset" not in new
    assert readme.regenerate(new)[1] == []


def test_the_list_output_names_every_registered_strategy():
    from mlbench.catalog import names
    from mlbench.kinds import all_strategies

    assert set(names("strategy")) == set(all_strategies())
    shown = readme.cli_examples()
    line = next(ln for ln in shown.splitlines() if ln.startswith("strategies:"))
    assert set(line.removeprefix("strategies:").replace(" ", "").split(",")) == set(
        names("strategy"))
    assert len(set(names("strategy"))) >= 27


@pytest.mark.parametrize(("folder", "only"), [("mnist", readme.MNIST_CLAIMS),
                                              ("transformers", readme.POSTTRAINING)])
def test_the_conclusions_are_the_verdicts_and_no_stronger(folder: str, only: tuple[str, ...]):
    rows = readme._rows(readme.quoted_findings(folder, only))
    assert rows and all(r["claim"] in readme._statements(only) for r in rows if only)
    text = readme.conclusions(folder, only)
    bullets = {m[0]: m[1] for m in re.findall(r"- \*\*(\w[\w ]*?)[ :(].*?\*\* (.*)", text)}
    for row in rows:
        said = f"{row['claim']} ({row['runs']})"
        where = [label for label, claims in bullets.items() if said in claims]
        assert where and where[0].lower().startswith(row["verdict"].split()[0]), row
    readme_text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "does *not* beat" not in readme_text  # a verdict of "inconclusive" said as "no"
    if folder == "mnist":
        assert "depend on the fine-tuning recipe" in text


def test_long_runs_are_quoted_from_their_records_and_a_bad_rerun_name_is_refused(capsys):
    for name in readme.LONG_RUNS:
        assert readme.record(name) == "```\n" + (
            REPO / "docs" / "records" / f"{name}.txt").read_text(encoding="utf-8") + "```\n"
    assert readme.main(["--rerun", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rerun needs one of sweep-digits" in err
