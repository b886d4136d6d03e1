"""Registered names without importing what they name: a name check before torch loads.

Datasets, models and strategies register by decorator where they are defined
(``@DATASETS.register("digits")``, ``@register_model("lenet")``,
``@register_strategy("random", ...)``), with a string literal for the name. Reading those
decorators from the source files takes milliseconds, where importing the modules imports
torch (seconds), so a misspelt name on the command line is reported at once.
torchvision's classification models are found the same way in its source.
tests/test_catalog.py checks that these names are exactly the registries' names.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

from mlbench.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent
_DECORATOR = {
    "dataset": re.compile(r"^@DATASETS\.register\(\s*\"(\w+)\"", re.M),
    "model": re.compile(r"^@register_model\(\s*\"(\w+)\"", re.M),
    "strategy": re.compile(r"^@register_(?:channel_)?strategy\(\s*\"(\w+)\"", re.M),
    "channel": re.compile(r"^@register_channel_strategy\(\s*\"(\w+)\"", re.M),
    "schedule": re.compile(r"^@register_schedule\(\s*\"(\w+)\"", re.M),
}
_FOLDER = {"dataset": ("data",), "model": ("models",), "strategy": ("strategies", "structured"),
           "channel": ("structured",), "schedule": ("schedules",)}
_IMPORT_ORDER = re.compile(r"for _module in \(([^)]*)\)")
# strategies named as string literals in a tuple rather than by a decorator
_CALIBRATED = Path("calibrated") / "_names.py"
_LITERALS = {
    "strategy": ((_CALIBRATED, ("UNSTRUCTURED_NAMES", "NM_NAMES", "UNIT_NAMES")),),
    "nm": ((_CALIBRATED, ("NM_NAMES",)),),  # N:M patterns (besides semi_2_4)
    "unit": ((_CALIBRATED, ("UNIT_NAMES",)),),  # transformer heads and neurons removed
}
_TORCHVISION = re.compile(r"@register_model\([^)]*\)[\s\S]*?\ndef (\w+)\(")
# What a schedule declares in its decorator (``@register_schedule("iterative",
# rounds=True)``), with the defaults of those it leaves out: read here without torch (the
# config's checks, the report's labels), set on the registered object by the decorator.
SCHEDULE_TRAITS: dict[str, bool] = {
    "named": True,  # run names and report labels name it (one-shot, the paper's, is unnamed)
    "rounds": False,  # splits the fine-tuning epochs over --prune-rounds rounds, >= 1 each
    "rewinds": False,  # each round starts from what --rewind names (weights: the base's
    #                    snapshot at --rewind-epoch, which base training must then keep)
}


@functools.cache
def names(kind: str) -> tuple[str, ...]:
    """Names of ``kind`` (dataset, model, strategy, channel, schedule) registered in
    mlbench's source.

    Ordered by the import loop of the package's ``__init__`` where it has one (so
    schedules read oneshot, iterative, gradual, as the registry orders them), else by
    file name, then position; use the registry's ``names()`` for display.
    """
    found: list[str] = []
    for folder in _FOLDER.get(kind, ()):
        for path in _in_import_order(PACKAGE / folder):
            found += _DECORATOR[kind].findall(path.read_text(encoding="utf-8"))
    for path, names_of in _LITERALS.get(kind, ()):
        found += _literal_names(PACKAGE / path, names_of)
    return tuple(dict.fromkeys(found))


def _literal_names(path: Path, tuples: tuple[str, ...]) -> list[str]:
    """The strings of the module-level tuples ``tuples`` of ``path``, read without
    importing it (``ast.literal_eval`` of each assignment)."""
    out: list[str] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in tuples):
            out += list(ast.literal_eval(node.value))
    return out


def _in_import_order(folder: Path) -> list[Path]:
    """The package's files, those its ``__init__`` imports in a loop first, in its order."""
    paths = sorted(folder.rglob("*.py"))
    init = folder / "__init__.py"
    match = _IMPORT_ORDER.search(init.read_text(encoding="utf-8")) if init.exists() else None
    if match is None:
        return paths
    order = re.findall(r"\"(\w+)\"", match.group(1))
    rank = {folder / f"{name}.py": i for i, name in enumerate(order)}
    return sorted(paths, key=lambda p: (rank.get(p, len(order)), p))


@functools.cache
def schedule_traits() -> dict[str, dict[str, bool]]:
    """Every registered schedule's traits (``SCHEDULE_TRAITS``), by name, read from the
    keywords of its ``@register_schedule`` decorator in the source (no import)."""
    out: dict[str, dict[str, bool]] = {}
    for path in _in_import_order(PACKAGE / "schedules"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            for call in getattr(node, "decorator_list", []):
                if isinstance(call, ast.Call) and ast.unparse(call.func) == "register_schedule":
                    declared = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
                    out[ast.literal_eval(call.args[0])] = {**SCHEDULE_TRAITS, **declared}
    return out


def schedule_trait(name: str, trait: str) -> bool:
    """The schedule ``name``'s ``trait`` (``SCHEDULE_TRAITS``); a schedule this mlbench
    does not know (a run of another version, read back) has the defaults."""
    return schedule_traits().get(name, SCHEDULE_TRAITS)[trait]


def schedule_mark(name: str) -> str:
    """What run names and report labels add for the schedule ``name``: "" for one-shot,
    else its name (also for a schedule this mlbench does not know: a run read back)."""
    return name if schedule_trait(name, "named") else ""


@functools.cache
def torchvision_models() -> frozenset[str]:
    """torchvision's classification model names (its top-level ``models`` modules)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    found: set[str] = set()
    for path in folder.glob("*.py"):
        found |= set(_TORCHVISION.findall(path.read_text(encoding="utf-8")))
    return frozenset(found)


def check_name(kind: str, name: str) -> None:
    """A ConfigError like the registry's for a name not registered (models: or torchvision's)."""
    known = names(kind)
    if name in known or (kind == "model" and name in torchvision_models()):
        return
    allowed = ", ".join(_display_order(kind, known))
    if kind == "model":
        raise ConfigError(
            f"unknown model {name!r}; choose one of: {allowed} or any torchvision "
            "classification model (e.g. resnet18, mobilenet_v2)")
    raise ConfigError(f"unknown {kind} {name!r}; choose one of: {allowed}")


def _display_order(kind: str, known: tuple[str, ...]) -> list[str]:
    if kind == "strategy":
        from mlbench.names import strategy_rank

        return sorted(known, key=strategy_rank)
    return list(known)
