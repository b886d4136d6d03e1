"""DESIGN.md's module boundaries: only tracking imports mlflow, only tuning imports optuna."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlbench"
OWNERS = {"mlflow": "mlbench/tracking", "optuna": "mlbench/tuning"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_only_its_owner_imports_a_library(library: str) -> None:
    owner = OWNERS[library]
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if library in _imports(path) and not relative.startswith(owner):
            offenders.append(relative)
    assert offenders == [], f"{library} may only be imported under {owner}"


def test_the_tracking_package_does_import_mlflow() -> None:
    assert any("mlflow" in _imports(p) for p in (PACKAGE / "tracking").rglob("*.py"))


def _mlbench_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return {n for n in names if n.startswith("mlbench")}


def test_no_module_imports_a_cli_module_and_subcommands_import_no_other() -> None:
    cli = PACKAGE / "cli"
    commands = {p.stem for p in cli.glob("*.py") if not p.stem.startswith("_")}
    for path in PACKAGE.rglob("*.py"):
        imported = _mlbench_imports(path)
        if path.parent != cli and path.name != "__main__.py":  # `python -m mlbench` is an edge
            assert not any(n.startswith("mlbench.cli") for n in imported), path
        elif path.stem != "__init__":
            others = {f"mlbench.cli.{c}" for c in commands - {path.stem}}
            assert not imported & others, path  # no cycle: helpers (_args, ...) only
