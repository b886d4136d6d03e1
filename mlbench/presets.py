"""Presets: YAML files in ``projects/`` naming a dataset, model, recipes and a grid.

A preset holds flat config keys (the CLI's option names with underscores, from the
schema in mlbench/options.py) plus the
grid keys ``strategies``, ``compressions`` and ``seeds``, and the tuner's
``search_space`` (see mlbench/search_space.py). Options given on the command line
override it. An unknown key or a wrong type is a ConfigError naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlbench.config import RunConfig
from mlbench.errors import ConfigError
from mlbench.grid import parse_grid
from mlbench.options import preset_keys
from mlbench.search_space import parse_search_space

GRID_KEYS = ("strategies", "compressions", "seeds", "prune_schedules", "calib_seeds",
             "curve_strategies", "curve_compressions")
SEARCH_SPACE = "search_space"
EXTRA_KEYS = (*GRID_KEYS, SEARCH_SPACE)  # preset keys that are not RunConfig options


def load_preset(path: str | Path) -> dict[str, Any]:
    """The flat dict of a preset file, checked for unknown keys and value types."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"--project {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--project {path}: not UTF-8 text (byte {exc.start}); a preset "
                          "is a YAML file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--project {path}: not valid YAML ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset is a mapping of option names to values")
    allowed = set(preset_keys()) | set(EXTRA_KEYS)
    unknown = sorted((k for k in data if k not in allowed), key=str)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}"
        )
    try:
        RunConfig.from_flat({k: v for k, v in data.items() if k not in EXTRA_KEYS})
        parse_grid({k: data[k] for k in GRID_KEYS if k in data})
        if SEARCH_SPACE in data:
            parse_search_space(data[SEARCH_SPACE])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return data


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
