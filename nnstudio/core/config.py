"""One TOML file describes a whole run; the window saves and opens the same file as a project.

```
[data]     path, target, task = "auto", split = [0.7, 0.15, 0.15], seed, missing = "impute", exclude = ["id", ...]
[model]    layers = [{type = "Linear", out_features = 64}, {type = "ReLU"}, {type = "Linear", out_features = "auto"}]
[training] epochs, batch_size, optimizer = {name = "Adam", lr = 0.001}, device = "auto", seed,
           class_weight = "none" | "balanced", ...
[output]   checkpoint, logdir, name
```
Relative paths are resolved against the folder of the TOML file.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from nnstudio.core.data import MISSING_POLICIES, TASKS, validate_split
from nnstudio.core.training.engine import TrainConfig
from nnstudio.core.errors import ConfigError, DataError, ModelSpecError
from nnstudio.core.files import atomic_write
from nnstudio.core.model.spec import default_layers, normalize_layer

SECTIONS = ("data", "model", "training", "output")


@dataclass
class DataConfig:
    path: str = ""
    target: str = ""  # empty: the last column
    task: str = "auto"
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    seed: int = 0
    missing: str = "impute"
    #: Columns left out of the features. Absent (None): the ones that cannot be features are left out
    #: (identifiers, constants, dates, text above the one-hot cap); the window always writes the list.
    exclude: list[str] | None = None
    #: Images (None: absent from the TOML, defaults apply): a folder `path` of class folders, or a table whose
    #: `image_column` holds image paths; `image_size = [H, W]` (default the most common), `channels` "auto" | 1 | 3,
    #: `on_bad` "skip" | "fail" for unreadable files, `[data.augment]` (core.data.augment), `stream` "auto" (from
    #: disk when the decoded images would take over a quarter of the free memory) | true | false, and `workers`
    #: "auto" | 0.. (the DataLoader's decoding processes of a streamed dataset).
    image_column: str | None = None
    image_size: list[int] | None = None
    channels: Any = None
    on_bad: str | None = None
    augment: dict[str, Any] | None = None
    stream: Any = None
    workers: Any = None

    def is_images(self, path: Path) -> bool:
        from nnstudio.core.data.images import is_image_folder

        return bool(self.image_column) or path.is_dir() and is_image_folder(path)


@dataclass
class OutputConfig:
    checkpoint: str = "model.pt"
    logdir: str = "runs"
    name: str = "run"


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    layers: list[dict[str, Any]] = field(default_factory=default_layers)
    training: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    base_dir: Path = field(default_factory=Path.cwd)
    #: The file's name in messages ("run.toml"), or "config" for one built in code.
    source: str = "config"

    def resolve(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.base_dir / p

    @property
    def data_path(self) -> Path:
        """The table to train on; an empty or absent `[data] path` is named as such, never taken as the folder."""
        if not str(self.data.path).strip():
            raise ConfigError(f"{self.source}: [data] path is missing: add the table to train on, e.g. "
                              "[data] path = \"penguins.csv\" (relative to the config's folder)")
        return self.resolve(self.data.path)

    @property
    def checkpoint_path(self) -> Path:
        return self.resolve(self.output.checkpoint)

    @property
    def logdir(self) -> Path:
        return self.resolve(self.output.logdir)

    # -- to and from plain dicts
    def to_dict(self) -> dict[str, Any]:
        t = self.training
        optimizer = {"name": t.optimizer, "lr": t.lr, "weight_decay": t.weight_decay}
        if t.optimizer in ("SGD", "RMSprop"):
            optimizer["momentum"] = t.momentum
        if t.optimizer == "SGD":
            optimizer["nesterov"] = t.nesterov
        scheduler: dict[str, Any] = {"name": t.scheduler}
        if t.scheduler == "step":
            scheduler.update(step_size=t.step_size, gamma=t.gamma)
        elif t.scheduler == "plateau":
            scheduler.update(factor=t.plateau_factor, patience=t.plateau_patience)
        training = {"epochs": t.epochs, "batch_size": t.batch_size, "shuffle": t.shuffle, "optimizer": optimizer,
                    "loss": t.loss, "scheduler": scheduler, "early_stopping": t.early_stopping,
                    "grad_clip": t.grad_clip, "device": t.device, "threads": t.threads,
                    "divergence_factor": t.divergence_factor}
        if t.class_weight != "none":
            training["class_weight"] = t.class_weight
        if t.seed is not None:
            training["seed"] = t.seed
        data = {k: v for k, v in vars(self.data).items() if v is not None}
        return {"data": data, "model": {"layers": copy.deepcopy(self.layers)}, "training": training,
                "output": dict(vars(self.output))}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base_dir: Path | None = None, source: str = "config") -> "RunConfig":
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected tables [data], [model], [training], [output]")
        raw = {k: v for k, v in raw.items() if k != "sweep"}  # [sweep]: read by core.experiments
        unknown = set(raw) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) [{'], ['.join(_name(k) for k in sorted(unknown, key=str))}]; "
                              f"allowed: [{'], ['.join(SECTIONS)}]")
        cfg = cls(base_dir=base_dir or Path.cwd(), source=source)
        cfg.data = _fill(DataConfig(), raw.get("data", {}), "data", source)
        _check_data(cfg.data, source)
        model = raw.get("model", {})
        _expect_table(model, "model", source)
        extra = set(model) - {"layers"}
        if extra:
            raise ConfigError(f"{source}: unknown key(s) in [model]: {_names(extra)}; allowed: layers")
        if "layers" in model:
            layers = model["layers"]
            if not isinstance(layers, list) or not layers:
                raise ConfigError(f"{source}: [model] layers must be a non-empty list of tables")
            try:
                cfg.layers = [normalize_layer(layer, i + 1) for i, layer in enumerate(layers)]
            except ModelSpecError as exc:
                raise ConfigError(f"{source}: [model] {exc}") from exc
        cfg.training = _training(raw.get("training", {}), source)
        cfg.output = _fill(OutputConfig(), raw.get("output", {}), "output", source)
        return cfg

    # -- files
    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such file")
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a run config (.toml)")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path.name}: not valid TOML ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path.name}: not a text file") from exc
        return cls.from_dict(raw, path.resolve().parent, path.name)

    def save(self, path: str | Path) -> Path:
        """Write the config; paths inside are made relative to the file's folder where possible."""
        path = Path(path)
        data = self.to_dict()
        target_dir = path.resolve().parent
        for section, key in (("data", "path"), ("output", "checkpoint"), ("output", "logdir")):
            value = data[section][key]
            if value:
                absolute = self.resolve(value).resolve()
                try:
                    data[section][key] = os.path.relpath(absolute, target_dir)
                except ValueError:  # another drive on Windows
                    data[section][key] = str(absolute)
        text = tomli_w.dumps(_drop_none(data))
        try:
            with atomic_write(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:  # a full disk or a vanished folder: say so (atomic_write kept the old file)
            raise ConfigError(f"{path}: could not save ({exc.strerror or exc}); the previous file, if any, "
                              "is unchanged") from exc
        self.base_dir = target_dir
        for section, key in (("data", "path"), ("output", "checkpoint"), ("output", "logdir")):
            setattr(getattr(self, section), key, data[section][key])
        return path


def _name(key: Any) -> str:
    """A key as it can be shown in one line: odd ones (blank, control characters) quoted."""
    text = str(key)
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def _names(keys: Any) -> str:
    return ", ".join(_name(k) for k in sorted(keys, key=str))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _expect_table(value: Any, section: str, source: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [{section}] must be a table, got {type(value).__name__}")


def _type_name(t: Any) -> str:
    return {int: "a whole number", float: "a number", str: "a string", bool: "true or false", list: "a list"}.get(t, str(t))


def _fill(obj: Any, raw: Any, section: str, source: str) -> Any:
    _expect_table(raw, section, source)
    allowed = {f.name: f for f in fields(obj)}
    unknown = set(raw) - set(allowed)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in [{section}]: {_names(unknown)}; "
                          f"allowed: {', '.join(allowed)}")
    for key, value in raw.items():
        current = getattr(obj, key)
        if key == "exclude" and section == "data":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: [data] exclude must be a list of column names, got {value!r}")
            setattr(obj, key, list(value))
            continue
        if section == "data" and key in _IMAGE_KEYS:
            setattr(obj, key, _image_value(key, value, source))
            continue
        expected = type(current)
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"{source}: [{section}] {key} must be {_type_name(expected)}, got {value!r}")
        setattr(obj, key, value)
    return obj


_IMAGE_KEYS = ("image_column", "image_size", "channels", "on_bad", "augment", "stream", "workers")


def _image_value(key: str, value: Any, source: str) -> Any:
    """An image key of [data], checked; ConfigError naming it."""
    where = f"{source}: [data] {key}"
    if key == "image_column" and not (isinstance(value, str) and value):
        raise ConfigError(f"{where} must be the name of the column of image paths, got {value!r}")
    if key == "image_size":
        if value == "auto":
            return None
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in value)):
            raise ConfigError(f"{where} must be [height, width] in pixels (1 to 4096) or \"auto\", got {value!r}")
        return list(value)
    if key == "channels" and value not in ("auto", 1, 3) or key == "channels" and isinstance(value, bool):
        raise ConfigError(f"{where} must be \"auto\", 1 (grey) or 3 (colour), got {value!r}")
    if key == "stream" and value not in ("auto", True, False):
        raise ConfigError(f"{where} must be \"auto\", true (read images from disk batch by batch) or false "
                          f"(decode them all into memory), got {value!r}")
    if key == "workers" and value != "auto" and (not isinstance(value, int) or isinstance(value, bool)
                                                 or not 0 <= value <= 64):
        raise ConfigError(f"{where} must be \"auto\" or a number of decoding processes from 0 to 64, got {value!r}")
    if key == "on_bad" and value not in ("skip", "fail"):
        raise ConfigError(f"{where} must be \"skip\" or \"fail\", got {value!r}")
    if key == "augment":
        from nnstudio.core.data.augment import Augment

        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [data.augment] must be a table, got {value!r}")
        try:
            Augment.from_dict(value)
        except DataError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        return dict(value)
    return value


def _check_data(data: DataConfig, source: str) -> None:
    if data.task not in ("auto", *TASKS):
        raise ConfigError(f"{source}: [data] task must be auto, regression, binary or multiclass, got {data.task!r}")
    if data.missing not in MISSING_POLICIES:
        raise ConfigError(f"{source}: [data] missing must be impute or drop, got {data.missing!r}")
    if not all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in data.split):
        raise ConfigError(f"{source}: [data] split must be a list of numbers, got {data.split!r}")
    try:
        data.split = list(validate_split(data.split))
    except DataError as exc:
        raise ConfigError(f"{source}: [data] {exc}") from exc


#: The ranges the window's training controls hold. A project outside them is reported by the window, never clamped.
WINDOW_LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, 1_000_000), "batch_size": (1, 10_000_000), "seed": (0, 2_147_483_647), "lr": (1e-6, 10.0),
    "weight_decay": (0.0, 1.0), "momentum": (0.0, 1.0), "step_size": (1, 1_000_000), "gamma": (0.001, 1.0),
    "plateau_factor": (0.001, 0.999), "plateau_patience": (0, 100_000), "early_stopping": (0, 100_000),
    "grad_clip": (0.0, 1_000_000.0),
}
#: torch.manual_seed takes any 64-bit value; beyond that it raises instead of seeding.
SEED_RANGE = (-(2 ** 63), 2 ** 64 - 1)


def window_range_problems(t: TrainConfig) -> list[str]:
    """Each [training] value the window's controls cannot hold, with its key and the range they allow."""
    problems = []
    for key, (low, high) in WINDOW_LIMITS.items():
        value = getattr(t, key)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not low <= value <= high:
            problems.append(f"[training] {_toml_key(key)} = {value:g} is outside {low:g} … {high:g}")
    return problems


_TRAINING_KEYS = {"epochs", "batch_size", "shuffle", "optimizer", "loss", "scheduler", "early_stopping", "grad_clip",
                  "device", "seed", "threads", "divergence_factor", "class_weight"}


def _training(raw: Any, source: str) -> TrainConfig:
    _expect_table(raw, "training", source)
    unknown = set(raw) - _TRAINING_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in [training]: {_names(unknown)}; "
                          f"allowed: {', '.join(sorted(_TRAINING_KEYS))}")
    flat: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("optimizer", "scheduler")}
    flat.update(_subtable(raw, "optimizer", {"name": "optimizer", "lr": "lr", "weight_decay": "weight_decay",
                                             "momentum": "momentum", "nesterov": "nesterov"}, source))
    flat.update(_subtable(raw, "scheduler", {"name": "scheduler", "step_size": "step_size", "gamma": "gamma",
                                             "factor": "plateau_factor", "patience": "plateau_patience"}, source))
    cfg = TrainConfig()
    defaults = TrainConfig()
    for key, value in flat.items():
        default = getattr(defaults, key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if key == "seed" or key == "threads":
            pass  # validated below with their own rules
        elif isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default)):
            raise ConfigError(f"{source}: [training] {_toml_key(key)} must be {_type_name(type(default))}, got {value!r}")
        setattr(cfg, key, value)
    check_training(cfg, source)
    return cfg


def check_training(cfg: TrainConfig, source: str) -> None:
    """The one validation of [training] values, for a file, the command line's overrides and the window alike:
    types and meaning (`TrainConfig.validate`), then the ranges the window's controls hold, each named by key."""
    try:
        cfg.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if cfg.seed is not None and not SEED_RANGE[0] <= cfg.seed <= SEED_RANGE[1]:
        raise ConfigError(f"{source}: [training] seed must be a 64-bit whole number "
                          f"({SEED_RANGE[0]} … {SEED_RANGE[1]}), got {cfg.seed}")
    problems = window_range_problems(cfg)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def _subtable(raw: dict[str, Any], name: str, keys: dict[str, str], source: str) -> dict[str, Any]:
    """`optimizer = "Adam"` or `optimizer = {name = "Adam", lr = 0.01}`, as TrainConfig field names."""
    table = raw.get(name, {})
    if isinstance(table, str):
        table = {"name": table}
    _expect_table(table, f"training.{name}", source)
    bad = set(table) - set(keys)
    if bad:
        raise ConfigError(f"{source}: unknown key(s) in [training] {name}: {_names(bad)}; "
                          f"allowed: {', '.join(keys)}")
    return {keys[k]: v for k, v in table.items()}


def _toml_key(key: str) -> str:
    return {"optimizer": "optimizer.name", "lr": "optimizer.lr", "weight_decay": "optimizer.weight_decay",
            "momentum": "optimizer.momentum", "nesterov": "optimizer.nesterov", "scheduler": "scheduler.name",
            "plateau_factor": "scheduler.factor", "plateau_patience": "scheduler.patience", "gamma": "scheduler.gamma",
            "step_size": "scheduler.step_size"}.get(key, key)
