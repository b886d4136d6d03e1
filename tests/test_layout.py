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


# -- import cycles and direction (lazy imports included) ---------------------------------

# DESIGN.md's direction: cli -> sweep, tuning, report -> recipe -> kinds, schedules,
# strategies -> engine, masks, metrics, speed -> data, models, options, names. A module
# imports modules of its own layer or below, never above; modules not named here
# (config, errors, registry, ...) belong to the last layer (the cycle test keeps that
# layer free of circles).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mlbench.cli", "mlbench.__main__"),
    ("mlbench.sweep", "mlbench.tuning", "mlbench.report"),
    ("mlbench.recipe", "mlbench.runs", "mlbench.pruned", "mlbench.resume"),
    ("mlbench.kinds", "mlbench.schedules", "mlbench.strategies", "mlbench.structured",
     "mlbench.at_init", "mlbench.rewind", "mlbench.calibrated"),
    ("mlbench.tracking",),
    ("mlbench.engine", "mlbench.masks", "mlbench.metrics", "mlbench.speed",
     "mlbench.setup", "mlbench.checkpoint", "mlbench.progress", "mlbench.optim",
     "mlbench._select", "mlbench._malloc", "mlbench.distributed", "mlbench.device"),
    ("mlbench.data", "mlbench.models", "mlbench.options", "mlbench.names",
     "mlbench.search_space", "mlbench.grid", "mlbench.presets", "mlbench.catalog"),
)
FOUNDATION = len(LAYERS) - 1


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (never executed)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped |= {id(n) for n in ast.walk(child)}
    return skipped


def _edges(name: str, path: Path, modules: set[str]) -> set[str]:
    """mlbench modules that ``name`` imports anywhere in its file (functions included)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") \
                and node.args and isinstance(node.args[0], ast.JoinedStr):
            prefix = "".join(v.value for v in node.args[0].values
                             if isinstance(v, ast.Constant))
            targets = [m for m in modules if m.startswith(prefix) and m.count(".") ==
                       prefix.count(".")]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _edges(name, path, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(name: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    return FOUNDATION


def test_the_import_graph_parses_lazy_imports():
    graph = _graph()
    assert "mlbench.pruned" in graph["mlbench"]  # load_pruned's import inside a function
    assert "mlbench.kinds._channels" in graph["mlbench.kinds"]  # importlib.import_module


def test_a_circle_is_found_through_any_number_of_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_mlbench_modules_lazy_imports_included():
    assert _cycles(_graph()) == []


def test_imports_run_one_way_through_the_layers():
    # ``mlbench`` itself (``__version__``; ``load_pruned`` and ``load_base`` import the
    # recipe's loaders when called) is the public edge, read by all and reading all.
    wrong = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                   if _layer(b) < _layer(a) and "mlbench" not in (a, b))
    assert wrong == []
