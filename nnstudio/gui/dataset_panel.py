"""The dataset panel: open a table off the GUI thread, preview it, choose target, task, split, missing-value policy
and each column's role (feature / ignore / target).

All data work is the core's (`nnstudio.core.data`); this module only shows its results and turns
the user's choices into a `prepare()` call.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from PySide6.QtCore import (QAbstractTableModel, QCoreApplication, QModelIndex, QObject, QPersistentModelIndex, QSize,
                            Qt, QThread, Signal)
from PySide6.QtGui import QActionGroup, QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame,
                               QGridLayout, QHBoxLayout, QHeaderView, QLabel, QMenu, QProgressBar, QPushButton,
                               QSizePolicy, QTableView, QTabWidget, QVBoxLayout, QWidget)

from nnstudio.core.data import (MISSING_POLICIES, TABLE_SUFFIXES, TASKS, ColumnInfo, PreparedData, as_table,
                                default_target, describe_columns, prepare, read_table, resolve_task, summarize,
                                unusable_features, validate_split)
from nnstudio.gui.column_roles import MAX_PERSISTENT_EDITORS, ROLES, ColumnRolesModel, RoleDelegate
from nnstudio.core.errors import DataError

if TYPE_CHECKING:  # polars loads with the first table (in the loader thread), not with the window
    import polars as pl

__all__ = ["DataFrameModel", "DatasetLoader", "DatasetPanel", "TableFacts", "describe_table", "load_table",
           "wait_for_loaders", "DEFAULT_SPLIT"]

DEFAULT_SPLIT = (0.7, 0.15, 0.15)
MISSING_TEXT = "—"
EMPTY_HINT = "Open a CSV/TSV, Parquet, NumPy (.npy/.npz) or tensor (.pt) file, or drop one on the window."
MAX_CLASSES_SHOWN = 8
MAX_COLUMN_WIDTH = 220
TASK_LABELS = {"regression": "regression", "binary": "binary", "multiclass": "multiclass"}
MISSING_LABELS = {"impute": "Impute (training mean)", "drop": "Drop rows with missing values"}


def _is_missing(value: Any) -> bool:
    """A null, or a NaN in a float column (the core counts both as missing)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------------------------- model

class DataFrameModel(QAbstractTableModel):
    """A read-only table over a polars DataFrame that formats a cell only when a view asks for it.

    Nothing is computed per row up front (a cell is one `series[row]` lookup when it is drawn), so a
    million-row frame costs no more to show than ten.
    Column facts for the header (kind, missing, unique) are computed by the core one column at a
    time, the first time that column's header is shown.
    """

    def __init__(self, frame: Any = None, parent: QObject | None = None,
                 columns: Sequence[ColumnInfo] | None = None):
        super().__init__(parent)
        self._frame: pl.DataFrame | None = None
        self._columns: list[pl.Series] = []
        self._names: dict[str, int] = {}
        self._digits: list[int | None] = []
        self._numeric: list[bool] = []
        self._infos: dict[int, ColumnInfo] = {}
        self._target_col = -1
        self._ignored: set[int] = set()
        self._missing_brush = QColor(128, 128, 128)
        self._target_brush = QColor(255, 196, 0, 48)
        if frame is not None:
            self.set_dataframe(frame, columns=columns)

    # -- content
    def set_dataframe(self, frame: Any, target: str | None = None,
                      columns: Sequence[ColumnInfo] | None = None) -> None:
        """Show `frame` (a polars DataFrame; a pandas one is converted). `columns` (the core's
        describe_columns, e.g. from the loader thread) saves computing the header facts here; without it
        each column is described when first shown."""
        if frame is not None:
            frame = as_table(frame)
        if frame is not None and columns is not None and len(columns) != frame.shape[1]:
            raise ValueError(f"{len(columns)} column descriptions for {frame.shape[1]} columns")
        self.beginResetModel()
        self._frame = frame
        self._infos = dict(enumerate(columns)) if columns is not None else {}
        if frame is None:
            self._columns, self._digits, self._numeric, self._names = [], [], [], {}
        else:
            self._columns = frame.get_columns()
            self._digits = [_float_digits(col.dtype) for col in self._columns]
            self._numeric = [col.dtype.is_numeric() for col in self._columns]
            self._names = {name: j for j, name in enumerate(frame.columns)}
        self._target_col = self._column_index(target)
        self.endResetModel()

    def column_infos(self) -> list[ColumnInfo]:
        return [self.column_info(j) for j in range(self.columnCount())]

    def dataframe(self) -> pl.DataFrame | None:
        return self._frame

    def set_target(self, name: str | None) -> None:
        old, new = self._target_col, self._column_index(name)
        if old == new:
            return
        self._target_col = new
        for col in (old, new):
            if col >= 0:
                self.headerDataChanged.emit(Qt.Orientation.Horizontal, col, col)
                if self.rowCount():
                    self.dataChanged.emit(self.index(0, col), self.index(self.rowCount() - 1, col),
                                          [Qt.ItemDataRole.BackgroundRole])

    def set_ignored(self, names: Sequence[str]) -> None:
        """Grey out these columns (role: ignore) and say so in their headers."""
        ignored = {self._column_index(n) for n in names} - {-1}
        if ignored == self._ignored:
            return
        self._ignored = ignored
        if self.columnCount():
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, self.columnCount() - 1)
            if self.rowCount():
                self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1),
                                      [Qt.ItemDataRole.ForegroundRole])

    def target(self) -> str | None:
        return str(self._frame.columns[self._target_col]) if self._frame is not None and self._target_col >= 0 else None

    def column_info(self, column: int) -> ColumnInfo:
        info = self._infos.get(column)
        if info is None:
            info = describe_columns(self._frame.select(self._frame.columns[column]))[0]
            self._infos[column] = info
        return info

    def _column_index(self, name: str | None) -> int:
        if name is None:
            return -1
        return self._names.get(name, -1)

    # -- Qt model interface
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        if parent.isValid() or self._frame is None:
            return 0
        return self._frame.height

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        if parent.isValid() or self._frame is None:
            return 0
        return self._frame.shape[1]

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole or role == Qt.ItemDataRole.ToolTipRole:
            value = self._columns[col][row]
            text = self._format(value, col)
            if role == Qt.ItemDataRole.ToolTipRole:
                return "missing value" if text is MISSING_TEXT else (text if len(text) > 24 else None)
            return text
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._missing_brush if col in self._ignored or _is_missing(self._columns[col][row]) else None
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._target_brush if col == self._target_col else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if self._numeric[col] else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self._frame is None:
            return None
        if orientation == Qt.Orientation.Vertical:
            if role == Qt.ItemDataRole.DisplayRole and 0 <= section < self._frame.height:
                return str(section + 1)
            return None
        if not 0 <= section < self._frame.shape[1]:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            info = self.column_info(section)
            return f"{info.name}\n{info.kind}" + (" · ignored" if section in self._ignored else "")
        if role == Qt.ItemDataRole.ToolTipRole:
            info = self.column_info(section)
            role_text = " — the target" if section == self._target_col else \
                " — ignored (right-click to change)" if section in self._ignored else ""
            return (f"{info.name}: {info.kind}{role_text}\n"
                    f"missing values: {info.missing:,}\nunique values: {info.unique:,}")
        if role == Qt.ItemDataRole.FontRole and section == self._target_col:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.BackgroundRole and section == self._target_col:
            return self._target_brush
        if role == Qt.ItemDataRole.ForegroundRole and section in self._ignored:
            return self._missing_brush
        return None

    def _format(self, value: Any, col: int) -> str:
        if _is_missing(value):
            return MISSING_TEXT
        digits = self._digits[col]
        if digits is not None and isinstance(value, float):
            if math.isinf(value):
                return "inf" if value > 0 else "-inf"
            return f"{value:.{digits}g}"
        return str(value)


def _float_digits(dtype: Any) -> int | None:
    """Significant digits a float column is shown with: what its precision holds (Float32: 7)."""
    import polars as pl

    if not dtype.is_float():
        return None
    return 7 if dtype == pl.Float32 else 10


# ---------------------------------------------------------------------------------------------- loading

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

def _file_filter() -> str:
    patterns = " ".join(f"*{s}" for s in sorted(TABLE_SUFFIXES))
    return f"Data files ({patterns});;CSV/TSV (*.csv *.tsv *.txt);;Parquet (*.parquet *.pq);;" \
           f"NumPy (*.npy *.npz);;PyTorch tensors (*.pt *.pth);;All files (*)"


class _ElidedLabel(QLabel):
    """A one-line label that shows '…' in the middle of a name too long for its width."""

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, rect.width())
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") * 4, super().minimumSizeHint().height())


class DatasetPanel(QWidget):
    """Open a data file, look at it, and say how to learn from it.

    Shows no dialogs except the file chooser: a failed load emits `load_failed` (the window shows a
    message box) and writes the reason in `errorLabel`, and the dataset loaded before stays.
    """

    dataset_loaded = Signal(str)
    load_failed = Signal(str, str)
    choices_changed = Signal()
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._frame: pl.DataFrame | None = None
        self._path = ""
        self._load_error = ""
        self._choice_error = ""
        self._resolved_task: str | None = None
        self._summaries: dict[tuple[str, str], dict[str, Any]] = {}
        self._inferred: dict[str, str] = {}
        self._flags: dict[str, str] = {}  # column → why it cannot be a feature (from the core, at load)
        self._ignored: list[str] = []  # columns whose role is ignore, in table order
        self._updating = False

        self.loader = DatasetLoader(self)
        self.loader.setObjectName("loader")
        self.loader.loaded.connect(self._on_loader_loaded)
        self.loader.failed.connect(self._on_loader_failed)
        self.loader.busy_changed.connect(self._on_loader_busy_changed)

        self.model = DataFrameModel(parent=self)
        self.model.setObjectName("model")
        self.rolesModel = ColumnRolesModel(self, parent=self)
        self.rolesModel.setObjectName("rolesModel")
        self._build()
        self._set_controls_enabled(False)
        self._refresh_error()

    # ------------------------------------------------------------------------------ construction
    def _named(self, widget: QWidget, name: str) -> Any:
        widget.setObjectName(name)
        setattr(self, name, widget)
        return widget

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)

        top = QHBoxLayout()
        top.setSpacing(8)
        open_button = self._named(QPushButton("Open dataset…"), "openButton")
        open_button.setToolTip("Open a CSV/TSV, Parquet, NumPy or tensor file (Ctrl+O)")
        open_button.clicked.connect(self._on_openButton_clicked)
        top.addWidget(open_button)
        path_label = self._named(_ElidedLabel("No dataset loaded"), "pathLabel")
        path_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        font = path_label.font()
        font.setBold(True)
        path_label.setFont(font)
        top.addWidget(path_label, 1)
        layout.addLayout(top)

        busy = QHBoxLayout()
        busy.setSpacing(8)
        bar = self._named(QProgressBar(), "loadingBar")
        bar.setRange(0, 0)
        bar.setTextVisible(False)
        bar.setMaximumHeight(10)
        bar.setFixedWidth(120)
        bar.setVisible(False)
        busy.addWidget(bar)
        status = self._named(QLabel(""), "statusLabel")
        status.setVisible(False)
        status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        busy.addWidget(status, 1)
        layout.addLayout(busy)

        error = self._named(QLabel(""), "errorLabel")
        error.setWordWrap(True)
        error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        error.setStyleSheet("QLabel { color: #b00020; background: #fdecea; border: 1px solid #f5c2c0;"
                            " border-radius: 3px; padding: 4px 6px; }")
        error.setVisible(False)
        layout.addWidget(error)

        table = self._named(QTableView(), "datasetTable")
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(False)
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.setMinimumHeight(110)  # with the Preview/Columns tab bar: the 140 px the table had alone
        vheader = table.verticalHeader()
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(table.fontMetrics().height() + 6)
        vheader.setDefaultAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        hheader = table.horizontalHeader()
        hheader.setResizeContentsPrecision(0)  # size columns by the rows in view, never by scanning the frame
        hheader.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        hheader.setHighlightSections(False)
        hheader.setStretchLastSection(False)
        hheader.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        hheader.customContextMenuRequested.connect(self._on_header_customContextMenuRequested)

        columns = self._named(QTableView(), "columnsTable")
        columns.setModel(self.rolesModel)
        columns.setItemDelegateForColumn(ColumnRolesModel.ROLE_COLUMN, RoleDelegate(columns))
        columns.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        columns.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        columns.setWordWrap(False)
        columns.verticalHeader().setVisible(False)
        columns.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 12)
        columns.horizontalHeader().setStretchLastSection(True)
        columns.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        tabs = self._named(QTabWidget(), "dataTabs")
        tabs.setDocumentMode(True)
        tabs.addTab(table, "Preview")
        tabs.addTab(columns, "Columns")
        tabs.setTabToolTip(1, "Each column's role: feature, ignore or target (also: right-click a preview header)")
        layout.addWidget(tabs, 1)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)

        target = self._named(QComboBox(), "targetCombo")
        target.setToolTip("The column the network learns to predict")
        target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        target.setMinimumContentsLength(12)
        target.currentIndexChanged.connect(self._on_targetCombo_currentIndexChanged)
        task = self._named(QComboBox(), "taskCombo")
        task.setToolTip("What kind of prediction: auto picks it from the target column")
        task.addItem("auto", "auto")
        for name in TASKS:
            task.addItem(TASK_LABELS[name], name)
        task.currentIndexChanged.connect(self._on_taskCombo_currentIndexChanged)
        form.addRow("Target", target)
        form.addRow("Task", task)

        split_grid = QGridLayout()
        split_grid.setHorizontalSpacing(6)
        split_grid.setVerticalSpacing(1)
        for col, (name, caption, low, high, tip) in enumerate((
                ("trainSplitSpin", "Train", 1.0, 100.0, "Share of rows the network is trained on"),
                ("valSplitSpin", "Validation", 0.0, 99.0, "Share of rows scored after each epoch"),
                ("testSplitSpin", "Test", 0.0, 99.0, "Share of rows held out for the final score"))):
            spin = self._named(QDoubleSpinBox(), name)
            spin.setRange(low, high)
            spin.setDecimals(1)
            spin.setSingleStep(5.0)
            spin.setSuffix(" %")
            spin.setToolTip(tip + "; the three shares always add up to 100 %")
            spin.setKeyboardTracking(False)
            spin.setAlignment(Qt.AlignmentFlag.AlignRight)
            caption_label = QLabel(caption)
            caption_label.setBuddy(spin)
            small = caption_label.font()
            small.setPointSizeF(small.pointSizeF() * 0.9)
            caption_label.setFont(small)
            split_grid.addWidget(caption_label, 0, col)
            split_grid.addWidget(spin, 1, col)
            split_grid.setColumnStretch(col, 1)
        self.trainSplitSpin.setValue(DEFAULT_SPLIT[0] * 100)
        self.valSplitSpin.setValue(DEFAULT_SPLIT[1] * 100)
        self.testSplitSpin.setValue(DEFAULT_SPLIT[2] * 100)
        self.trainSplitSpin.valueChanged.connect(self._on_trainSplitSpin_valueChanged)
        self.valSplitSpin.valueChanged.connect(self._on_valSplitSpin_valueChanged)
        self.testSplitSpin.valueChanged.connect(self._on_testSplitSpin_valueChanged)
        split_label = QLabel("Split")
        split_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)
        split_label.setMinimumHeight(1)
        form.addRow(split_label, split_grid)

        missing = self._named(QComboBox(), "missingCombo")
        missing.setToolTip("What to do with missing feature values (rows without a target are always dropped)")
        for policy in MISSING_POLICIES:
            missing.addItem(MISSING_LABELS.get(policy, policy), policy)
        missing.currentIndexChanged.connect(self._on_missingCombo_currentIndexChanged)
        form.addRow("Missing values", missing)
        layout.addLayout(form)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)

        summary = self._named(QLabel(EMPTY_HINT), "summaryLabel")
        summary.setWordWrap(True)
        summary.setTextFormat(Qt.TextFormat.PlainText)
        summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        summary.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        layout.addWidget(summary)

        self._choice_widgets = [target, task, self.trainSplitSpin, self.valSplitSpin, self.testSplitSpin, missing]

    # ------------------------------------------------------------------------------ public API
    def choose_file(self) -> None:
        """Ask for a file with a dialog and open it (the Open button and File ▸ Open dataset…)."""
        start = str(Path(self._path).parent) if self._path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset", start, _file_filter())
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> None:
        """Start loading `path` in the background; `dataset_loaded` or `load_failed` follows."""
        path = str(path)
        self.statusLabel.setText(f"Loading {Path(path).name}…")
        self.loader.load(path)

    def is_busy(self) -> bool:
        return self.loader.is_busy()

    def shutdown(self) -> None:
        """Wait for a load in progress to finish and drop its result (the window calls this on close)."""
        self.loader.shutdown()

    def set_dataframe(self, frame: Any, path: str | Path = "", *, facts: TableFacts | None = None) -> None:
        """Show `frame` at once (no thread): target back to the last column, task back to auto.

        `frame` is a polars DataFrame (a pandas one is converted with `as_table`). The split and
        missing-value policy are kept. `facts` (from `describe_table`, as the loader thread computes
        them) spares the GUI thread a scan of a large table. Raises DataError for a frame that cannot
        be a dataset (fewer than two columns, no rows, duplicate column names).
        """
        name = Path(str(path)).name if path else "the table"
        counts = Counter(str(c) for c in getattr(frame, "columns", ()))  # a pandas frame may repeat a name
        dupes = sorted(c for c, n in counts.items() if n > 1)
        if dupes:
            raise DataError(f"{name}: duplicate column name(s) {', '.join(dupes)}")
        try:
            frame = as_table(frame)
        except TypeError as exc:
            raise DataError(f"{name}: expected a table (DataFrame), got {type(frame).__name__}") from exc
        except Exception as exc:  # noqa: BLE001 - polars' own errors (columns of unequal length, say)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{name}: cannot be read as a table ({detail})") from exc
        if frame.width < 2:
            raise DataError(f"{name}: found {frame.width} column(s); a dataset needs at least one feature and a target")
        if frame.height == 0:
            raise DataError(f"{name}: the table has no rows")

        self.loader.cancel()
        self._frame = frame
        self._path = str(path)
        self._summaries = {}
        self._inferred = {}
        target = default_target(frame)
        flags = facts.flags if facts is not None and facts.flags is not None else \
            unusable_features(frame, target, facts.columns if facts is not None else None)
        self._flags = dict(flags)
        self._ignored = [str(c) for c in frame.columns if c in self._flags]
        if facts is not None and facts.summary is not None:
            self._summaries[(facts.summary["target"], facts.summary["task"])] = facts.summary
            self._inferred[facts.summary["target"]] = facts.summary["task"]
        self._load_error = ""
        self._updating = True
        try:
            self.targetCombo.clear()
            self.targetCombo.addItems([str(c) for c in frame.columns])
            self.targetCombo.setCurrentIndex(self.targetCombo.findText(target))
            self.taskCombo.setCurrentIndex(0)
        finally:
            self._updating = False
        self.model.set_dataframe(frame, target, columns=facts.columns if facts is not None else None)
        self.model.set_ignored(self._ignored)
        self._reset_roles_table()
        self._size_columns()
        self.pathLabel.setText(Path(self._path).name if self._path else "(unsaved table)")
        self.pathLabel.setToolTip(self._path)
        self._set_controls_enabled(True)
        self._refresh_choices()
        self.dataset_loaded.emit(self._path)

    def dataframe(self) -> pl.DataFrame | None:
        return self._frame

    def path(self) -> str:
        return self._path

    def target(self) -> str | None:
        if self._frame is None:
            return None
        return self.targetCombo.currentText() or None

    def task_choice(self) -> str:
        """'auto' or one of the core's TASKS, as chosen in `taskCombo`."""
        return self.taskCombo.currentData() or "auto"

    def task(self) -> str | None:
        """The resolved task (never 'auto'); None without a dataset; DataError if the choice cannot apply."""
        if self._frame is None:
            return None
        if self._resolved_task is None:
            raise DataError(self._choice_error or "the task could not be resolved")
        return self._resolved_task

    def split(self) -> tuple[float, float, float]:
        train = round(self.trainSplitSpin.value(), 1)
        val = round(self.valSplitSpin.value(), 1)
        test = round(100.0 - train - val, 1)
        return train / 100.0, val / 100.0, test / 100.0

    def missing(self) -> str:
        return self.missingCombo.currentData()

    # -- column roles
    def role(self, name: str) -> str:
        """feature, ignore or target."""
        if name == self.target():
            return "target"
        return "ignore" if name in self._ignored else "feature"

    def flag(self, name: str) -> str:
        """Why the column was set to ignore at load ('' when it was not flagged)."""
        return self._flags.get(name, "")

    def excluded(self) -> list[str]:
        """The ignored columns, in table order (what a project stores as [data] exclude)."""
        return list(self._ignored)

    def features(self) -> list[str]:
        if self._frame is None:
            return []
        target = self.target()
        return [str(c) for c in self._frame.columns if c != target and c not in self._ignored]

    def set_role(self, name: str, role: str) -> None:
        """Make `name` a feature, ignored, or the target (the old target becomes a feature)."""
        if self._frame is None or name not in self._frame.columns:
            raise DataError(f"no column '{name}' in the table")
        if role not in ROLES:
            raise DataError(f"unknown role '{role}': use feature, ignore or target")
        if role == "target":
            self.set_choices(target=name)
            return
        if role == "ignore" and name == self.target():
            raise DataError(f"'{name}' is the target; choose another target before ignoring it")
        ignored = set(self._ignored) | {name} if role == "ignore" else set(self._ignored) - {name}
        if name == self.target():  # feature on the target: nothing to change
            return
        self._apply_ignored(ignored)
        self.choices_changed.emit()

    def _apply_ignored(self, ignored: set[str]) -> None:
        target = self.target()
        self._ignored = [str(c) for c in self._frame.columns if c in ignored and c != target]
        self.model.set_ignored(self._ignored)
        self.rolesModel.roles_changed()
        self.summaryLabel.setText(self._summary_text())

    def prepare(self, seed: int = 0) -> PreparedData:
        """Tensors for training, by the core, from the panel's choices. Raises DataError."""
        if self._frame is None:
            raise DataError("no dataset loaded; open a data file first")
        return prepare(self._frame, self.target(), self.task_choice(), self.split(), seed=seed,
                       missing=self.missing(), features=self.features())

    def set_choices(self, target: str | None = None, task: str | None = None,
                    split: Sequence[float] | None = None, missing: str | None = None,
                    exclude: Sequence[str] | None = None) -> None:
        """Apply saved choices (a project or checkpoint); None leaves one as it is.

        Everything is checked before anything changes: a bad value raises DataError and changes nothing.
        """
        if target is not None:
            if self._frame is None:
                raise DataError(f"cannot choose target '{target}': no dataset loaded")
            if target not in self._frame.columns:
                raise DataError(f"target column '{target}' not found in {Path(self._path).name or 'the table'}; "
                                f"columns are: {', '.join(map(str, self._frame.columns))}")
        if task is not None and task != "auto" and task not in TASKS:
            raise DataError(f"unknown task '{task}': use auto, {', '.join(TASKS)}")
        fractions = validate_split(split) if split is not None else None
        if missing is not None and missing not in MISSING_POLICIES:
            raise DataError(f"unknown missing-value policy '{missing}': use {' or '.join(MISSING_POLICIES)}")
        if exclude is not None:
            unknown = [c for c in exclude if self._frame is None or c not in self._frame.columns]
            if unknown:
                raise DataError(f"excluded column(s) {', '.join(unknown)} not found in "
                                f"{Path(self._path).name or 'the table'}")
        if self._frame is not None and (target is not None or task is not None):
            resolve_task(self._frame, target or self.target(), task or self.task_choice())

        self._updating = True
        try:
            if target is not None:
                self.targetCombo.setCurrentIndex(self.targetCombo.findText(target))
            if task is not None:
                self.taskCombo.setCurrentIndex(self.taskCombo.findData(task))
            if fractions is not None:
                train, val = round(fractions[0] * 100, 1), round(fractions[1] * 100, 1)
                self.trainSplitSpin.setValue(train)
                self.valSplitSpin.setValue(val)
                self.testSplitSpin.setValue(round(100.0 - train - val, 1))
            if missing is not None:
                self.missingCombo.setCurrentIndex(self.missingCombo.findData(missing))
        finally:
            self._updating = False
        self.model.set_target(self.target())
        if self._frame is not None:
            self._apply_ignored(set(exclude) if exclude is not None else set(self._ignored))
        self._refresh_choices()
        self.choices_changed.emit()

    # ------------------------------------------------------------------------------ slots
    def _on_openButton_clicked(self) -> None:
        self.choose_file()

    def _on_loader_loaded(self, path: str, frame: object, facts: object) -> None:
        try:
            self.set_dataframe(frame, path, facts=facts)  # type: ignore[arg-type]
        except DataError as exc:
            self._on_loader_failed(path, str(exc))

    def _on_loader_failed(self, path: str, message: str) -> None:
        kept = f" {Path(self._path).name or 'The previous table'} stays loaded." if self._frame is not None else ""
        self._load_error = f"{message.rstrip('.')}.{kept}"
        self._refresh_error()
        self.load_failed.emit(path, message)

    def _on_loader_busy_changed(self, busy: bool) -> None:
        self.loadingBar.setVisible(busy)
        self.statusLabel.setVisible(busy)
        if not busy:
            self.statusLabel.clear()
        self.busy_changed.emit(busy)

    def _on_targetCombo_currentIndexChanged(self, index: int) -> None:
        if self._updating or self._frame is None:
            return
        self.model.set_target(self.target())
        self._apply_ignored(set(self._ignored))  # a column made the target is no longer ignored
        self._refresh_choices()
        self.choices_changed.emit()

    def _on_taskCombo_currentIndexChanged(self, index: int) -> None:
        if self._updating:
            return
        self._refresh_choices()
        self.choices_changed.emit()

    def _on_missingCombo_currentIndexChanged(self, index: int) -> None:
        if self._updating:
            return
        self.choices_changed.emit()

    def _on_trainSplitSpin_valueChanged(self, value: float) -> None:
        self._rebalance_split(edited="train")

    def _on_valSplitSpin_valueChanged(self, value: float) -> None:
        self._rebalance_split(edited="val")

    def _on_testSplitSpin_valueChanged(self, value: float) -> None:
        self._rebalance_split(edited="test")

    def _on_header_customContextMenuRequested(self, pos) -> None:
        section = self.datasetTable.horizontalHeader().logicalIndexAt(pos)
        if self._frame is None or section < 0:
            return
        name = str(self._frame.columns[section])
        menu = QMenu(self)
        menu.setObjectName("roleMenu")
        group = QActionGroup(menu)
        current = self.role(name)
        for role in ROLES:
            action = menu.addAction(f"{name}: {role}")
            action.setCheckable(True)
            action.setChecked(role == current)
            action.setData(role)
            group.addAction(action)
        reason = self.flag(name)
        if reason:
            menu.addSeparator()
            menu.addAction(f"flagged at load: {reason}").setEnabled(False)
        chosen = menu.exec(self.datasetTable.horizontalHeader().mapToGlobal(pos))
        if chosen is not None and chosen.data() in ROLES:
            try:
                self.set_role(name, chosen.data())
            except DataError as exc:
                self._choice_error = str(exc)
                self._refresh_error()

    # ------------------------------------------------------------------------------ internals
    def _reset_roles_table(self) -> None:
        self.rolesModel.reset()
        table = self.columnsTable
        if self.rolesModel.rowCount() <= MAX_PERSISTENT_EDITORS:
            for row in range(self.rolesModel.rowCount()):
                table.openPersistentEditor(self.rolesModel.index(row, ColumnRolesModel.ROLE_COLUMN))
        table.resizeColumnsToContents()

    def _rebalance_split(self, edited: str) -> None:
        """Keep the shares at 100 %: editing train or validation moves test; editing test moves validation."""
        if self._updating:
            return
        train = round(self.trainSplitSpin.value(), 1)
        val = round(self.valSplitSpin.value(), 1)
        test = round(self.testSplitSpin.value(), 1)
        if edited in ("train", "val"):
            test = round(100.0 - train - val, 1)
            if test < 0:
                val, test = round(100.0 - train, 1), 0.0
        else:
            val = round(100.0 - train - test, 1)
            if val < 0:
                val, test = 0.0, round(100.0 - train, 1)
        self._updating = True
        try:
            for spin, value in ((self.valSplitSpin, val), (self.testSplitSpin, test)):
                if spin.value() != value:
                    spin.setValue(value)
        finally:
            self._updating = False
        self.choices_changed.emit()

    def _refresh_choices(self) -> None:
        """Re-resolve the task, relabel 'auto (…)', and redo the summary after any change."""
        self._choice_error = ""
        self._resolved_task = None
        if self._frame is None:
            self._refresh_error()
            return
        target = self.target()
        try:
            inferred = self._inferred.get(target) or resolve_task(self._frame, target, "auto")
            self._inferred[target] = inferred
        except DataError as exc:
            inferred = None
            self._choice_error = str(exc)
        self.taskCombo.setItemText(0, f"auto ({inferred})" if inferred else "auto")
        choice = self.task_choice()
        try:
            self._resolved_task = inferred if choice == "auto" else resolve_task(self._frame, target, choice)
        except DataError as exc:
            self._choice_error = str(exc)
        self.summaryLabel.setText(self._summary_text())
        self._refresh_error()

    def _summary_text(self) -> str:
        frame = self._frame
        assert frame is not None
        target = self.target() or ""
        head = f"{len(frame):,} rows · {len(self.features())} features"
        if self._resolved_task is None:
            return head
        key = (target, self._resolved_task)
        info = self._summaries.get(key)
        if info is None:
            try:
                info = summarize(frame, target, self._resolved_task)
            except DataError as exc:
                self._choice_error = str(exc)
                return head
            self._summaries[key] = info
        lines = [f"{info['rows']:,} rows · {len(self.features())} features · target {info['target']} ({info['task']})"]
        if self._ignored:
            why = [f"{c} ({self._flags[c]})" if c in self._flags else c for c in self._ignored]
            lines.append(f"Ignored: {', '.join(why)}")
        classes = info.get("classes")
        if classes:
            shown = sorted(classes.items(), key=lambda kv: -kv[1])[:MAX_CLASSES_SHOWN]
            more = len(classes) - len(shown)
            text = ", ".join(f"{name} {count:,}" for name, count in shown)
            lines.append(f"{len(classes)} classes: {text}" + (f", … {more} more" if more > 0 else ""))
        missing = info.get("missing") or {}
        if missing.get(target):
            lines.append(f"{missing[target]:,} rows without a target: dropped before training")
        if missing:
            total = sum(missing.values())
            cols = ", ".join(f"{name} {count:,}" for name, count in missing.items())
            lines.append(f"Missing values: {total:,} ({cols})")
        else:
            lines.append("Missing values: none")
        return "\n".join(lines)

    def _refresh_error(self) -> None:
        choice = self._choice_error[:1].upper() + self._choice_error[1:]  # core messages start lower-case
        text = "\n".join(t for t in (self._load_error, choice) if t)
        self.errorLabel.setText(text)
        self.errorLabel.setVisible(bool(text))

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in self._choice_widgets:
            widget.setEnabled(enabled)

    def _size_columns(self) -> None:
        self.datasetTable.resizeColumnsToContents()
        header = self.datasetTable.horizontalHeader()
        for col in range(self.model.columnCount()):
            if header.sectionSize(col) > MAX_COLUMN_WIDTH:
                header.resizeSection(col, MAX_COLUMN_WIDTH)
