"""Tables opened off the GUI thread: a worker in a QThread reads and describes the file, one job at a time per
loader, and every running loader is waited for before the application quits."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal

from nnstudio.core.data import (
    ColumnInfo,
    as_table,
    default_target,
    describe_columns,
    read_table,
    summarize,
    unusable_features,
)
from nnstudio.core.errors import DataError

if TYPE_CHECKING:  # polars loads with the first table (in the loader thread), not with the window
    import polars as pl


def load_table(path: str | Path) -> pl.DataFrame:
    """`read_table` for the loader thread: every failure becomes a DataError that names the file."""
    try:
        return read_table(path)
    except DataError:
        raise
    except PermissionError as exc:
        raise DataError(f"{Path(path).name}: permission denied; check that you may read this file") from exc
    except Exception as exc:  # noqa: BLE001 - the loader must report, never crash the window
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{Path(path).name}: could not read ({detail})") from exc


@dataclass
class TableFacts:
    """What the loader thread learns about a table besides its rows, so the GUI thread need not scan it."""

    columns: list[ColumnInfo]
    summary: dict[str, Any] | None  # summarize() for the default target and task, None if that fails
    flags: dict[str, str] | None = None  # unusable_features(): columns that start ignored, with the reason
    image_column: str | None = None  # a column of image file paths (core.data.image_table): an image dataset


def describe_table(frame: Any) -> TableFacts:
    frame = as_table(frame)
    try:
        summary = summarize(frame)
    except DataError:
        summary = None
    columns = describe_columns(frame)
    return TableFacts(columns, summary, unusable_features(frame, default_target(frame), columns))


class _LoadWorker(QObject):
    """Lives in the loader thread; its `run` reads one file and reports back by signal."""

    loaded = Signal(int, str, object)
    failed = Signal(int, str, str)
    finished = Signal(int)

    def __init__(self, job_id: int, path: str):
        super().__init__()
        self._job_id = job_id
        self._path = path

    def run(self) -> None:
        try:
            frame = load_table(self._path)
            facts = describe_table(frame)
            from nnstudio.core.data.image_table import image_path_column

            facts.image_column = image_path_column(frame, Path(self._path).parent)  # stats files: here, not in the GUI
        except DataError as exc:
            self.failed.emit(self._job_id, self._path, str(exc))
        except BaseException as exc:  # noqa: BLE001 - report, the thread must end cleanly
            self.failed.emit(self._job_id, self._path, f"{Path(self._path).name}: could not read ({exc!r})")
        else:
            self.loaded.emit(self._job_id, self._path, (frame, facts))
        finally:
            self.finished.emit(self._job_id)


@dataclass
class _Job:
    thread: QThread
    worker: _LoadWorker
    path: str
    result: tuple[pl.DataFrame, TableFacts] | None = None
    error: str | None = None


# Every started thread stays referenced here until it has finished, even if its loader is gone:
# a QThread garbage-collected while running aborts the process.
_RUNNING: dict[int, _Job] = {}
_RUNNING_LOCK = threading.Lock()
_next_job_id = 0
_quit_hook_installed = False


def wait_for_loaders() -> None:
    """Block until every loader thread has finished, even those whose loader is gone (run on `aboutToQuit`)."""
    with _RUNNING_LOCK:
        jobs = list(_RUNNING.values())
    for job in jobs:
        job.thread.quit()
        job.thread.wait()
    _prune_finished()


def _prune_finished() -> None:
    with _RUNNING_LOCK:
        for job_id in [i for i, job in _RUNNING.items() if job.thread.isFinished()]:
            del _RUNNING[job_id]


class DatasetLoader(QObject):
    """Reads data files in a worker thread; reports on the GUI thread.

    Each `load()` starts its own thread (reading cannot be interrupted), and only the result of
    the latest request is reported: opening B while A is still loading shows B, never A.
    `loaded`/`failed` are emitted after the worker thread has finished.
    """

    loaded = Signal(str, object, object)  # path, DataFrame, TableFacts
    failed = Signal(str, str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs: dict[int, _Job] = {}
        self._latest = -1
        global _quit_hook_installed
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
            if not _quit_hook_installed:
                app.aboutToQuit.connect(wait_for_loaders)
                _quit_hook_installed = True

    def is_busy(self) -> bool:
        return self._latest in self._jobs

    def load(self, path: str | Path) -> None:
        global _next_job_id
        _prune_finished()
        was_busy = self.is_busy()
        _next_job_id += 1
        job_id = _next_job_id
        thread = QThread()
        thread.setObjectName(f"DatasetLoader-{job_id}")
        worker = _LoadWorker(job_id, str(path))
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.loaded.connect(self._on_worker_loaded)
        worker.failed.connect(self._on_worker_failed)
        worker.finished.connect(self._on_worker_finished)
        job = _Job(thread, worker, str(path))
        self._jobs[job_id] = job
        with _RUNNING_LOCK:
            _RUNNING[job_id] = job
        self._latest = job_id
        thread.start()
        if not was_busy:
            self.busy_changed.emit(True)

    def cancel(self) -> None:
        """Forget the pending request: its thread runs to the end (a read cannot be interrupted), unreported."""
        if self.is_busy():
            self._latest = -1
            self.busy_changed.emit(False)

    def shutdown(self) -> None:
        """Wait for this loader's threads to finish (never terminate) and drop their results."""
        was_busy = self.is_busy()
        jobs, self._jobs = list(self._jobs.items()), {}
        for job_id, job in jobs:
            job.thread.quit()
            job.thread.wait()
            self._forget(job_id)
        if was_busy:
            self.busy_changed.emit(False)

    def _on_worker_loaded(self, job_id: int, path: str, result: object) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.result = result  # type: ignore[assignment]

    def _on_worker_failed(self, job_id: int, path: str, message: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.error = message

    def _on_worker_finished(self, job_id: int) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        job.thread.wait()  # it has quit already; this makes isRunning() false before anyone hears of it
        self._forget(job_id)
        if job_id != self._latest:
            return
        self.busy_changed.emit(False)
        if job.result is not None:
            self.loaded.emit(job.path, *job.result)
        else:
            self.failed.emit(job.path, job.error or f"{Path(job.path).name}: loading stopped unexpectedly")

    @staticmethod
    def _forget(job_id: int) -> None:
        with _RUNNING_LOCK:
            _RUNNING.pop(job_id, None)


# ---------------------------------------------------------------------------------------------- panel
