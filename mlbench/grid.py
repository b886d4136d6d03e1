"""A sweep's grid: strategies x compressions x seeds, parsed and checked without torch."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlbench.catalog import check_name
from mlbench.config import MAX_COMPRESSION, MAX_SEED, PRUNE_SCHEDULES, RunConfig
from mlbench.errors import ConfigError
from mlbench.names import BASELINES

DEFAULT_COMPRESSIONS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Grid:
    """The cells of a sweep: every strategy at every compression for every seed.

    With several ``prune_schedules``, every schedule too, except where the strategy's
    kind cannot run the schedule (channel removal runs one-shot only): ``cells`` leaves
    those out when given the kinds' answer.
    """

    strategies: tuple[str, ...] = BASELINES
    compressions: tuple[float, ...] = DEFAULT_COMPRESSIONS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    prune_schedules: tuple[str, ...] = ("oneshot",)
    # Post-training strategies (presets only): every cell once per calibration seed
    # (empty: the config's own), and a curve of ``curve_strategies`` x
    # ``curve_compressions`` on the first seed and calibration seed only.
    calib_seeds: tuple[int, ...] = ()
    curve_strategies: tuple[str, ...] = ()
    curve_compressions: tuple[float, ...] = ()

    def extras(self) -> dict[str, tuple]:
        """The post-training keys that are set (left out of hashes and params when not)."""
        keys = ("calib_seeds", "curve_strategies", "curve_compressions")
        return {k: getattr(self, k) for k in keys if getattr(self, k)}

    def cells(self, base: RunConfig,
              runs: Callable[[str, str], bool] = lambda strategy, schedule: True,
              ) -> list[RunConfig]:
        """One RunConfig per cell, grouped by seed (so each base model is made once).

        ``runs(strategy, schedule)`` says whether a (strategy, schedule) pair can run;
        pairs it refuses are left out.
        """
        calib = self.calib_seeds or (base.prune.calib_seed,)

        def cell(seed: int, strategy: str, schedule: str, c: float, k: int) -> RunConfig:
            prune = dataclasses.replace(base.prune, strategy=strategy, compression=c,
                                        prune_schedule=schedule, calib_seed=k)
            return dataclasses.replace(base, seed=seed, prune=prune)

        cells = [
            cell(seed, strategy, schedule, c, k)
            for seed in self.seeds
            for strategy in self.strategies
            for schedule in self.prune_schedules
            if runs(strategy, schedule)
            for c in self.compressions
            for k in calib
        ]
        curve = [
            cell(self.seeds[0], strategy, schedule, c, calib[0])
            for strategy in self.curve_strategies
            for schedule in self.prune_schedules
            if runs(strategy, schedule)
            for c in self.curve_compressions
        ]
        seen = {cfg.run_hash() for cfg in cells}
        for cfg in curve:  # grouped with the first seed's cells: its base model is made once
            if cfg.run_hash() not in seen:
                seen.add(cfg.run_hash())
                at = max(i for i, c in enumerate(cells) if c.seed == cfg.seed) + 1
                cells.insert(at, cfg)
        return cells

    def check(self) -> None:
        """Known strategies, finite compressions >= 1, seeds >= 0, nothing empty."""
        for name, values in dataclasses.asdict(self).items():
            if not values and name not in ("calib_seeds", "curve_strategies",
                                           "curve_compressions"):
                raise ConfigError(f"--{name} must name at least one value")
        if bool(self.curve_strategies) != bool(self.curve_compressions):
            raise ConfigError("curve_strategies and curve_compressions go together")
        for strategy in (*self.strategies, *self.curve_strategies):
            check_name("strategy", strategy)
        for c in (*self.compressions, *self.curve_compressions):
            if not math.isfinite(c) or c < 1:
                raise ConfigError(f"--compressions must all be finite and >= 1, got {c:g}")
            if c > MAX_COMPRESSION:
                raise ConfigError(f"--compressions must all be <= {MAX_COMPRESSION:g}, got "
                                  f"{c:g}; allowed: 1 to {MAX_COMPRESSION:g}")
        for name, seeds in (("--seeds", self.seeds), ("calib_seeds", self.calib_seeds)):
            for s in seeds:
                if s < 0:
                    raise ConfigError(f"{name} must all be >= 0, got {s}")
                if s > MAX_SEED:
                    raise ConfigError(f"{name} must all be <= {MAX_SEED}, got {s}; allowed: "
                                      f"0 to {MAX_SEED}")
        for schedule in self.prune_schedules:
            if schedule not in PRUNE_SCHEDULES:
                raise ConfigError(f"--prune-schedules must be among "
                                  f"{', '.join(PRUNE_SCHEDULES)}, got {schedule!r}")


def parse_list(text: str | Iterable[object], kind: type, option: str) -> tuple:
    """``"1,2,4"`` (or a YAML list) -> ``(1.0, 2.0, 4.0)``, naming the bad item if any."""
    if not isinstance(text, (str, list, tuple)):  # a preset's `compressions: 5`
        raise ConfigError(f"{option}: expected a list (a YAML list or \"1,2,4\"), "
                          f"got {text!r}")
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        raw = item.strip() if isinstance(item, str) else item
        if raw == "" or raw is None:  # "a,,b" or a trailing comma: a typo, never dropped
            raise ConfigError(f"{option}: empty item in {_shown(text)}; separate the "
                              "values with single commas")
        try:
            if isinstance(raw, bool) or (kind is not str and isinstance(raw, (list, dict))):
                raise ValueError
            value = kind(raw)
            if kind is int and isinstance(raw, float) and raw != int(raw):
                raise ValueError
            if kind is float and not math.isfinite(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            name = ("an integer" if kind is int else "a finite number" if kind is float
                    else "a name")
            raise ConfigError(f"{option}: expected {name}, got {raw!r}") from None
        if value in out:
            raise ConfigError(f"{option}: {raw!r} is given twice in {_shown(text)}; name "
                              "each value once")
        out.append(value)
    return tuple(out)


def _shown(text: str | Iterable[object]) -> str:
    return repr(text) if isinstance(text, str) else repr(list(text))


def parse_grid(values: Mapping[str, Any]) -> Grid:
    """The grid from options or a preset (``strategies``, ``compressions``, ``seeds``)."""
    defaults = Grid()
    grid = Grid(
        strategies=parse_list(values.get("strategies") or defaults.strategies, str,
                              "--strategies"),
        compressions=parse_list(values.get("compressions") or defaults.compressions, float,
                                "--compressions"),
        seeds=parse_list(values.get("seeds") or defaults.seeds, int, "--seeds"),
        prune_schedules=parse_list(values.get("prune_schedules") or defaults.prune_schedules,
                                   str, "--prune-schedules"),
        calib_seeds=parse_list(values.get("calib_seeds") or (), int, "calib_seeds"),
        curve_strategies=parse_list(values.get("curve_strategies") or (), str,
                                    "curve_strategies"),
        curve_compressions=parse_list(values.get("curve_compressions") or (), float,
                                      "curve_compressions"),
    )
    grid.check()
    return grid
