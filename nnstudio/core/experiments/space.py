"""`[sweep]`: parsing and checking the search space before the first trial, and one run config per trial."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from nnstudio.core.config import RunConfig
from nnstudio.core.errors import ConfigError

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
_KEYS = {"trials", "metric", "direction", "sampler", "pruner", "storage", "study", "seed", "parameters"}
_LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "l1", "huber")


@dataclass
class Param:
    """One searched config key: a float/int range (optionally log or stepped) or a list of choices."""
    path: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @property
    def is_int(self) -> bool:
        return self.choices is None and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in (self.low, self.high)) and (
            self.step is None or isinstance(self.step, int))

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.path, self.choices)
        if self.is_int:
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.path, float(self.low), float(self.high), step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        """The values a grid sampler walks: the choices, or the stepped range."""
        if self.choices is not None:
            return list(self.choices)
        if self.step is None:
            raise ConfigError(f"[sweep] parameters \"{self.path}\": the grid sampler needs choices or a step")
        n = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(n)]
        return [int(v) for v in values] if self.is_int else [round(v, 12) for v in values]

    def extremes(self) -> list[Any]:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class SweepConfig:
    base: RunConfig
    params: list[Param]
    trials: int = 20
    metric: str = "val_loss"
    direction: str = "minimize"
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str = ""
    study: str = "sweep"
    seed: int | None = 0
    source: str = "config"
    raw_base: dict[str, Any] = field(default_factory=dict)

    def storage_url(self) -> str:
        """The storage: as given, or a SQLite file beside the log folder (`runs.optuna.db` for `runs/`)."""
        if self.storage:
            return self.storage
        logdir = self.base.logdir.resolve()
        return f"sqlite:///{logdir.parent / (logdir.name + '.optuna.db')}"


def default_direction(metric: str) -> str:
    name = metric.split("_", 1)[1] if "_" in metric else metric
    return "minimize" if any(name == k or name.endswith("_" + k) for k in _LOWER_IS_BETTER) else "maximize"


def load_sweep(path: str | Path) -> SweepConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc})") from exc
    sweep = parse_sweep(raw, path.resolve().parent, path.name)
    if "study" not in raw.get("sweep", {}):
        sweep.study = path.stem
    return sweep


def parse_sweep(raw: dict[str, Any], base_dir: Path, source: str = "config") -> SweepConfig:
    """The `[sweep]` table checked against the run config: unknown paths and bad ranges name their key."""
    raw = dict(raw)
    table = raw.pop("sweep", None)
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: no [sweep] table; add one with trials, metric and [sweep.parameters]")
    base = RunConfig.from_dict(raw, base_dir, source)
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in [sweep]: {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(_KEYS))}")
    s = SweepConfig(base=base, params=[], source=source, raw_base=base.to_dict())
    s.trials = _whole(table.get("trials", 20), "trials", source, 1)
    s.metric = str(table.get("metric", "val_loss"))
    if not s.metric.startswith(("val_", "test_")):
        raise ConfigError(f"{source}: [sweep] metric {s.metric!r} must start with val_ or test_ (e.g. val_accuracy)")
    s.direction = str(table.get("direction", default_direction(s.metric)))
    if s.direction not in ("minimize", "maximize"):
        raise ConfigError(f"{source}: [sweep] direction must be \"minimize\" or \"maximize\", got {s.direction!r}")
    for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        value = table.get(key, getattr(s, key))
        if value not in allowed:
            raise ConfigError(f"{source}: [sweep] {key} must be one of {', '.join(allowed)}, got {value!r}")
        setattr(s, key, value)
    s.storage = str(table.get("storage", ""))
    s.study = str(table.get("study", s.study))
    seed = table.get("seed", 0)
    s.seed = None if seed is None else _whole(seed, "seed", source, 0)
    params = table.get("parameters", {})
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{source}: [sweep.parameters] must name at least one config key, "
                          "e.g. \"training.optimizer.lr\" = {low = 1e-4, high = 1e-1, log = true}")
    for key, spec in params.items():
        s.params.append(_param(key, spec, s.raw_base, source))
    for p in s.params:  # every extreme must give a valid run config
        for value in p.extremes():
            try:
                trial_config(s, {p.path: value})
            except ConfigError as exc:
                raise ConfigError(f"{source}: [sweep.parameters] \"{p.path}\" = {value!r} is not a valid "
                                  f"setting ({str(exc).split(': ', 1)[-1]})") from exc
    if s.sampler == "grid":
        for p in s.params:
            p.grid()
    return s


def _whole(value: Any, key: str, source: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{source}: [sweep] {key} must be a whole number ≥ {low}, got {value!r}")
    return value


def _param(key: str, spec: Any, base: dict[str, Any], source: str) -> Param:
    where = f"{source}: [sweep.parameters] \"{key}\""
    _locate(base, key, where)
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a table: {{low, high}}, {{low, high, log = true}}, {{low, high, step}} "
                          "or {choices = [...]}")
    extra = set(spec) - {"low", "high", "log", "step", "choices"}
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed: low, high, log, step, choices")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
            raise ConfigError(f"{where}: choices must be a non-empty list, and alone")
        return Param(key, choices=list(spec["choices"]))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where} needs low and high (or choices)")
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    for name, v in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ConfigError(f"{where}: {name} must be a number, got {v!r}")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false")
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is above high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
    if step is not None and (step <= 0 or log):
        raise ConfigError(f"{where}: step must be > 0 and cannot go with log")
    return Param(key, low=low, high=high, log=log, step=step)


def _locate(tree: dict[str, Any], key: str, where: str) -> tuple[Any, Any]:
    """The container and index a dotted path sets; ConfigError if the path names nothing in the config."""
    parts = key.split(".")
    node: Any = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{where}: no item {part} in {'.'.join(parts[:i])} "
                                  f"(it has {len(node)}, numbered from 0)")
            idx: Any = int(part)
        elif isinstance(node, dict):
            is_layer = "type" in node
            if part not in node and not (last and is_layer):
                raise ConfigError(f"{where}: no key {part!r} in {'.'.join(parts[:i]) or 'the config'}; "
                                  f"it has {', '.join(map(str, node)) or 'nothing'}")
            idx = part
        else:
            raise ConfigError(f"{where}: {'.'.join(parts[:i])} is a value, not a table or list")
        if last:
            return node, idx
        node = node[idx]
    raise ConfigError(f"{where}: an empty path")


def trial_config(sweep: SweepConfig, values: dict[str, Any], name: str | None = None) -> RunConfig:
    """The base run config with `values` (dotted config key → value) set; checked like a loaded file."""
    tree = copy.deepcopy(sweep.raw_base)
    for key, value in values.items():
        node, idx = _locate(tree, key, f"{sweep.source}: [sweep.parameters] \"{key}\"")
        node[idx] = value
    if name is not None:
        tree["output"]["name"] = name
    return RunConfig.from_dict(tree, sweep.base.base_dir, sweep.source)
