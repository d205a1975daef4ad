"""The runs in a log folder: what each one was (dataset, model, optimizer, scores) and its curves.

A run is a folder ``<logdir>/<timestamp>-<name>/`` written by :class:`~nnstudio.core.training.callbacks.TensorBoardLogger`:
TensorBoard event files (read here with tensorboard's own ``EventFileLoader``) and ``run.json`` beside them
(the run config, the dataset, the scores and the checkpoint; see :data:`RUN_INFO`). A folder written by any
other ``SummaryWriter`` is a run too, with what its events hold.

:class:`ScalarReader` keeps each event file's position, so reading a folder that is being written (a headless
``nnstudio train``, a torchrun job on a shared disk) costs only the new events.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from nnstudio.core.errors import NNStudioError
from nnstudio.core.training.run_folder import (  # noqa: F401  (re-exported: the reader's public names)
    EVENTS_GLOB, METRIC_PREFIX, RUN_INFO, TAG_EPOCH, TAG_LR, TAG_STEP_LOSS, TAG_TRAIN_LOSS, TAG_VAL_LOSS, read_info,
    write_info)

log = logging.getLogger(__name__)


class RunError(NNStudioError):
    """A run folder cannot be read, renamed or deleted."""


def is_run_dir(path: Path) -> bool:
    try:
        return path.is_dir() and (any(path.glob(EVENTS_GLOB)) or (path / RUN_INFO).is_file())
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ reading events
class ScalarReader:
    """Every scalar of one run folder, read incrementally: each :meth:`poll` reads only new events.

    Scalars are kept per tag as growing lists of (step, value); text summaries (the model) by tag.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._loaders: dict[Path, Any] = {}
        self.scalars: dict[str, tuple[list[int], list[float]]] = {}
        self.texts: dict[str, str] = {}
        self._plugins: dict[str, str] = {}

    def poll(self) -> dict[str, tuple[list[int], list[float]]]:
        """Read the events written since the last poll; returns the new points per tag.

        Uses tensorboard's ``LegacyEventFileLoader`` (records checked and parsed, no migration): its
        ``EventFileLoader`` also migrates every event to the newer summary format, which measured 235 µs an
        event against 54 µs here (5,000 step losses), and these scalars need none of it.
        """
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

        new: dict[str, tuple[list[int], list[float]]] = {}
        try:
            files = sorted(self.run_dir.glob(EVENTS_GLOB))
        except OSError:
            return new
        for path in files:
            loader = self._loaders.get(path)
            if loader is None:
                try:
                    loader = self._loaders[path] = LegacyEventFileLoader(str(path))
                except (OSError, ValueError) as exc:
                    log.debug("cannot open %s: %s", path, exc)
                    continue
            try:
                for event in loader.Load():
                    self._take(event, new)
            except (OSError, ValueError) as exc:  # a file cut short or removed while read: its points so far stay
                log.debug("cannot read %s: %s", path, exc)
        return new

    def _take(self, event: Any, new: dict[str, tuple[list[int], list[float]]]) -> None:
        if not event.HasField("summary"):
            return
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            plugin = value.metadata.plugin_data.plugin_name
            if plugin:  # a writer may name a tag's plugin on its first value only
                self._plugins[value.tag] = plugin
            plugin = self._plugins.get(value.tag, "")
            if kind == "simple_value":
                number = float(value.simple_value)
            elif kind == "tensor" and plugin == "scalars":
                from tensorboard.util import tensor_util

                number = float(tensor_util.make_ndarray(value.tensor).reshape(-1)[0])
            elif kind == "tensor" and plugin == "text":
                from tensorboard.util import tensor_util

                raw = tensor_util.make_ndarray(value.tensor).reshape(-1)
                if raw.size:
                    item = raw[0]
                    self.texts[value.tag] = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
                continue
            else:
                continue
            for store in (self.scalars, new):
                steps, values = store.setdefault(value.tag, ([], []))
                steps.append(int(event.step))
                values.append(number)

    def series(self, tag: str) -> tuple[np.ndarray, np.ndarray]:
        steps, values = self.scalars.get(tag, ([], []))
        return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)


@dataclass
class Curves:
    """A run's curves as arrays, in the plots' terms: step loss against global steps, epoch losses against the
    global step that ended each epoch, metrics and learning rate against epochs."""

    step_x: np.ndarray
    step_loss: np.ndarray
    epoch_step: np.ndarray  # global step at the end of each epoch of train_loss
    train_loss: np.ndarray
    val_loss: np.ndarray  # NaN where an epoch had no validation
    epochs: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # per epoch, aligned with `epochs`
    lr: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.step_x) + len(self.epochs)


def curves_from(scalars: dict[str, tuple[list[int], list[float]]], steps_per_epoch: int | None = None,
                epoch_steps: dict[int, int] | None = None) -> Curves:
    """Points of the known tags as :class:`Curves`; ``epoch_steps`` maps epochs to the step that ended them
    (learned from the ``epoch`` tag, here or in an earlier call, and updated)."""
    def get(tag: str) -> tuple[list[int], list[float]]:
        return scalars.get(tag, ([], []))

    mapping = epoch_steps if epoch_steps is not None else {}
    for step, epoch in zip(*get(TAG_EPOCH)):
        mapping[int(round(epoch))] = step
    epochs_list, train = get(TAG_TRAIN_LOSS)
    by_epoch_val = dict(zip(*get(TAG_VAL_LOSS)))
    by_epoch_lr = dict(zip(*get(TAG_LR)))
    metric_tags = sorted(t for t in scalars if t.startswith(METRIC_PREFIX))
    by_epoch_metrics = {t[len(METRIC_PREFIX):]: dict(zip(*scalars[t])) for t in metric_tags}
    epochs = np.asarray(epochs_list, dtype=np.int64)

    def step_of(epoch: int) -> float:
        if epoch in mapping:
            return float(mapping[epoch])
        return float(epoch * steps_per_epoch) if steps_per_epoch else float(epoch)

    nan = float("nan")
    return Curves(
        step_x=np.asarray(get(TAG_STEP_LOSS)[0], dtype=np.float64),
        step_loss=np.asarray(get(TAG_STEP_LOSS)[1], dtype=np.float64),
        epoch_step=np.asarray([step_of(int(e)) for e in epochs], dtype=np.float64),
        train_loss=np.asarray(train, dtype=np.float64),
        val_loss=np.asarray([by_epoch_val.get(int(e), nan) for e in epochs], dtype=np.float64),
        epochs=epochs,
        metrics={name: np.asarray([values.get(int(e), nan) for e in epochs], dtype=np.float64)
                 for name, values in by_epoch_metrics.items()},
        lr=np.asarray([by_epoch_lr.get(int(e), nan) for e in epochs], dtype=np.float64),
    )


def read_curves(run_dir: str | Path) -> Curves:
    """All curves of a run folder, read whole."""
    run_dir = Path(run_dir)
    reader = ScalarReader(run_dir)
    reader.poll()
    return curves_from(reader.scalars, read_info(run_dir).get("steps_per_epoch"))


# ------------------------------------------------------------------------------------------ the list
_STAMP = re.compile(r"^(\d{8}-\d{6})-(.*)$")


@dataclass
class RunRecord:
    """One run as the runs table shows it."""

    path: Path
    name: str
    date: datetime
    dataset: str = ""
    target: str = ""
    task: str = ""
    layers: str = ""
    optimizer: str = ""
    status: str = ""
    best_val_loss: float | None = None
    validation: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    config: dict[str, Any] | None = None
    steps_per_epoch: int | None = None

    @property
    def checkpoint_exists(self) -> bool:
        return bool(self.checkpoint) and Path(self.checkpoint).is_file()

    def overlay_key(self) -> tuple[str, str]:
        return (self.task, self.target)

    def run_config(self):
        """The run's whole configuration as a :class:`~nnstudio.core.config.RunConfig`."""
        from nnstudio.core.config import RunConfig

        if not self.config:
            raise RunError(f"{self.path.name}: the run has no saved configuration ({RUN_INFO} missing); "
                           "only runs written by nnstudio can be restored")
        return RunConfig.from_dict(self.config, self.path, f"{self.path / RUN_INFO}")


def _stamp_date(name: str) -> datetime | None:
    match = _STAMP.match(name)
    if match:
        try:
            return datetime.strptime(match.group(1), "%Y%m%d-%H%M%S")
        except ValueError:
            return None
    return None


def read_run(run_dir: str | Path) -> RunRecord:
    """What is known of one run folder: its ``run.json`` and, for runs without one, its events."""
    run_dir = Path(run_dir)
    info = read_info(run_dir)
    match = _STAMP.match(run_dir.name)
    date = None
    if info.get("started"):
        try:
            date = datetime.fromisoformat(str(info["started"]))
        except ValueError:
            date = None
    date = date or _stamp_date(run_dir.name)
    if date is None:
        try:
            date = datetime.fromtimestamp(run_dir.stat().st_mtime)
        except OSError:
            date = datetime.fromtimestamp(0)
    record = RunRecord(path=run_dir, name=str(info.get("name") or (match.group(2) if match else run_dir.name)),
                       date=date)
    record.dataset = str(info.get("dataset") or "")
    record.target = str(info.get("target") or "")
    record.task = str(info.get("task") or "")
    record.layers = str(info.get("layers") or "")
    record.optimizer = str(info.get("optimizer") or "")
    record.status = str(info.get("status") or ("" if info else "unknown"))
    record.best_val_loss = _number(info.get("best_val_loss"))
    record.validation = _numbers(info.get("validation"))
    record.test = _numbers(info.get("test"))
    record.checkpoint = str(info["checkpoint"]) if info.get("checkpoint") else None
    record.config = info.get("config") if isinstance(info.get("config"), dict) else None
    spe = info.get("steps_per_epoch")
    record.steps_per_epoch = spe if isinstance(spe, int) and spe > 0 else None
    if not info:  # another program's SummaryWriter: the best validation loss from its events
        reader = ScalarReader(run_dir)
        reader.poll()
        _, val = reader.series(TAG_VAL_LOSS)
        finite = val[np.isfinite(val)]
        record.best_val_loss = float(finite.min()) if finite.size else None
    return record


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _numbers(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if _number(v) is not None}


def list_runs(logdir: str | Path) -> list[RunRecord]:
    """Every run folder directly inside ``logdir``, oldest first (a missing folder has no runs)."""
    logdir = Path(logdir)
    try:
        children = [p for p in logdir.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []
    runs = [read_run(p) for p in children if is_run_dir(p)]
    return sorted(runs, key=lambda r: (r.date, r.path.name))


def overlay_problem(runs: Iterable[RunRecord]) -> str:
    """Why these runs cannot share the plots ("" when they can): only runs of one task and target can."""
    runs = list(runs)
    if not runs:
        return ""

    def what(r: RunRecord) -> str:
        return f"{r.task or 'unknown task'} of '{r.target or '?'}'"

    for run in runs[1:]:
        if run.overlay_key() != runs[0].overlay_key():
            return (f"'{run.name}' is {what(run)} but '{runs[0].name}' is {what(runs[0])}: only runs of the same "
                    "task and target share the plots (their losses and metrics measure different things)")
    return ""


def rename_run(record: RunRecord, new_name: str) -> Path:
    """Rename a run's folder, keeping its timestamp; the run's name in ``run.json`` too."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", new_name.strip()).strip("-.")
    if not safe:
        raise RunError(f"'{new_name}' cannot name a run: use letters, digits, '-', '_' or '.'")
    match = _STAMP.match(record.path.name)
    folder = f"{match.group(1)}-{safe}" if match else safe
    target = record.path.with_name(folder)
    if target == record.path:
        return target
    if target.exists():
        raise RunError(f"{target}: a run with that name already exists; choose another name")
    try:
        record.path.rename(target)
    except OSError as exc:
        raise RunError(f"{record.path}: cannot rename ({exc.strerror or exc})") from exc
    info = read_info(target)
    if info:
        info["name"] = new_name.strip()
        write_info(target, info)
    return target


def delete_run(record: RunRecord) -> None:
    """Delete a run's folder (only a folder that holds a run: never a folder that merely has the path)."""
    if not is_run_dir(record.path):
        raise RunError(f"{record.path}: not a run folder (no TensorBoard events); nothing was deleted")
    try:
        shutil.rmtree(record.path)
    except OSError as exc:
        raise RunError(f"{record.path}: cannot delete ({exc.strerror or exc}); some files may remain") from exc


# ------------------------------------------------------------------------------------------ following
def _started_key(path: Path) -> float:
    """When a run folder started: its name's timestamp (nnstudio's), else its modification time."""
    date = _stamp_date(path.name)
    if date is not None:
        return date.timestamp()
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class RunFollower:
    """Follows a folder being written: a run folder, or a log folder (then its newest run, switching to a newer
    one when it appears). Each :meth:`poll` reads only new events and returns the new points as :class:`Curves`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.run_dir: Path | None = None
        self.reader: ScalarReader | None = None
        self._epoch_steps: dict[int, int] = {}
        self.info: dict[str, Any] = {}

    def _newest_run(self) -> Path | None:
        if is_run_dir(self.folder):
            return self.folder
        try:
            runs = [p for p in self.folder.iterdir() if not p.name.startswith(".") and is_run_dir(p)]
        except OSError:
            return None
        return max(runs, key=_started_key) if runs else None

    def poll(self) -> tuple[bool, Curves]:
        """(whether a new run started, the points new since the last poll)."""
        newest = self._newest_run()
        started = False
        if newest is not None and newest != self.run_dir and (
                self.run_dir is None or _started_key(newest) > _started_key(self.run_dir)):
            self.run_dir, self.reader, self._epoch_steps, self.info, started = newest, ScalarReader(newest), {}, {}, True
        if self.reader is None:
            return False, curves_from({})
        self.info = read_info(self.run_dir) or self.info
        new = self.reader.poll()
        return started, curves_from(new, self.info.get("steps_per_epoch"), self._epoch_steps)

    @property
    def run_name(self) -> str:
        if self.run_dir is None:
            return ""
        return str(self.info.get("name") or self.run_dir.name)

    @property
    def checkpoint(self) -> Path | None:
        """The run's checkpoint once it has been written."""
        path = self.info.get("checkpoint")
        return Path(path) if path and Path(path).is_file() else None

    @property
    def status(self) -> str:
        return str(self.info.get("status") or "")
