"""The dataset panel: open a table off the GUI thread, preview it, choose target, task, split, missing-value policy
and each column's role (feature / ignore / target).

All data work is the core's (`nnstudio.core.data`); this module only shows its results and turns
the user's choices into a `prepare()` call.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from PySide6.QtCore import (QSize,
                            Qt, Signal)
from PySide6.QtGui import QActionGroup, QPainter, QPaintEvent
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame,
                               QGridLayout, QHBoxLayout, QHeaderView, QLabel, QMenu, QProgressBar, QPushButton,
                               QSizePolicy, QTableView, QTabWidget, QVBoxLayout, QWidget)

from nnstudio.core.data import (MISSING_POLICIES, TABLE_SUFFIXES, TASKS, PreparedData, as_table,
                                default_target, prepare, resolve_task, summarize,
                                unusable_features, validate_split)
from nnstudio.gui.column_roles import MAX_PERSISTENT_EDITORS, ROLES, ColumnRolesModel, RoleDelegate
from nnstudio.core.errors import DataError
from nnstudio.gui.table_model import DataFrameModel
from nnstudio.gui.dataset_loader import DatasetLoader, TableFacts, describe_table, load_table, wait_for_loaders

if TYPE_CHECKING:  # polars loads with the first table (in the loader thread), not with the window
    import polars as pl

__all__ = ["DataFrameModel", "DatasetLoader", "DatasetPanel", "TableFacts", "describe_table", "load_table",
           "wait_for_loaders", "DEFAULT_SPLIT"]

DEFAULT_SPLIT = (0.7, 0.15, 0.15)
EMPTY_HINT = "Open a CSV/TSV, Parquet, NumPy (.npy/.npz) or tensor (.pt) file, or drop one on the window."
MAX_CLASSES_SHOWN = 8
MAX_COLUMN_WIDTH = 220
TASK_LABELS = {"regression": "regression", "binary": "binary", "multiclass": "multiclass"}
MISSING_LABELS = {"impute": "Impute (training mean)", "drop": "Drop rows with missing values"}


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


def image_summary_text(info: dict[str, Any]) -> str:
    """What the dataset panel says about an image folder: count, classes, size, channels, skipped files."""
    classes = info.get("classes") or {}
    size = info.get("image_size")
    channels = info.get("channels")
    lines = [f"{info.get('images', 0):,} images · {len(classes)} classes · "
             + (f"{size[0]}×{size[1]} px" if size else "no size") + f" · {channels} channel"
             + ("" if channels == 1 else "s") + (" (grey)" if channels == 1 else " (RGB)")]
    if info.get("sizes", 1) > 1:
        lines.append(f"{info['sizes']} sizes: others are resized to {size[0]}×{size[1]}")
    shown = list(classes.items())[:3 * MAX_CLASSES_SHOWN]  # class folders are few and short-named: most fit
    more = len(classes) - len(shown)
    lines.append("Classes: " + ", ".join(f"{c} {n:,}" for c, n in shown) + (f", … {more} more" if more > 0 else ""))
    skipped = info.get("skipped") or []
    if skipped:
        lines.append(f"{len(skipped)} file(s) skipped, e.g. {skipped[0]}")
    if info.get("storage_note"):
        lines.append("Training: " + info["storage_note"])
    column = info.get("image_column")
    if column:
        lines.insert(0, f"Images: column '{column}' lists image files (relative to the table); "
                        f"classes from column '{info.get('label_column')}'")
        lines.append(f"Task: multiclass, one class per value of '{info.get('label_column')}'")
    else:
        lines.append("Task: multiclass, one class per subfolder")
    return "\n".join(lines)


class DatasetPanel(QWidget):
    """Open a data file, look at it, and say how to learn from it.

    Shows no dialogs except the file chooser: a failed load emits `load_failed` (the window shows a
    message box) and writes the reason in `errorLabel`, and the dataset loaded before stays.
    """

    dataset_loaded = Signal(str)
    load_failed = Signal(str, str)
    image_table_found = Signal(str, str)  # path, column of image paths: the window opens it as images
    image_label_chosen = Signal(str)  # a table of images: the column its classes now come from
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
        self._images: dict[str, Any] | None = None  # summarize_images() of an open image folder, else None
        self._found_table: tuple[str, Any, Any] | None = None  # a table listing images, while the window decides
        self._as_table: str | None = None  # a table listing images that the user asked to read as a table

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
        # a narrow dock (1024 px screens) puts a field under its label rather than scrolling sideways
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
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
        task.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        task.setMinimumContentsLength(12)  # "auto (multiclass)" elides in a narrow dock, never widens it
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
        missing.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        missing.setMinimumContentsLength(12)
        missing.currentIndexChanged.connect(self._on_missingCombo_currentIndexChanged)
        form.addRow("Missing values", missing)
        layout.addLayout(form)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        as_table = self._named(QPushButton("Read as a table instead"), "readAsTableButton")
        as_table.setToolTip("This table lists image files, so it opened as images; read its columns as features instead")
        as_table.clicked.connect(self._on_readAsTableButton_clicked)
        as_table.setVisible(False)
        layout.addWidget(as_table, 0, Qt.AlignmentFlag.AlignLeft)

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
        self._leave_images()
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

    # -- image folders: no table; the summary says what the folder holds, the split applies
    def show_images(self, path: str | Path, info: dict[str, Any]) -> None:
        """Make an image dataset (``summarize_images`` of a class folder, or of a table of image paths with its
        "image_column", "label_column" and "columns") the dataset: no preview table, its summary instead."""
        self.loader.cancel()
        self._frame = None
        self._images = dict(info)
        self._path = str(path)
        self._load_error = self._choice_error = ""
        self._resolved_task = "multiclass"
        self.dataTabs.setVisible(False)
        self.layout().setStretchFactor(self.summaryLabel, 1)  # the summary takes the table's place, controls on top
        self._set_controls_enabled(True)
        for widget in (self.targetCombo, self.taskCombo, self.missingCombo):
            widget.setEnabled(False)
        column = info.get("image_column")
        self._updating = True
        try:
            self.targetCombo.clear()
            if column:  # a table of image paths: its classes from a column the user may choose
                self.targetCombo.addItems([c for c in info.get("columns", ()) if c != column])
                self.targetCombo.setCurrentIndex(self.targetCombo.findText(info.get("label_column") or ""))
            else:
                self.targetCombo.addItem("class folder")
            self.targetCombo.setEnabled(bool(column))
            self.readAsTableButton.setVisible(bool(column))
            self.taskCombo.setCurrentIndex(self.taskCombo.findData("multiclass"))
        finally:
            self._updating = False
        self.pathLabel.setText(Path(self._path).name)
        self.pathLabel.setToolTip(self._path)
        self.summaryLabel.setText(image_summary_text(self._images))
        self._refresh_error()
        self.dataset_loaded.emit(self._path)

    def images(self) -> dict[str, Any] | None:
        """The open image folder's summary (None when the dataset is a table or nothing is open)."""
        return self._images

    def has_data(self) -> bool:
        return self._frame is not None or self._images is not None

    def _leave_images(self) -> None:
        if self._images is not None:
            self._images = None
            self.readAsTableButton.setVisible(False)
            self.dataTabs.setVisible(True)
            self.layout().setStretchFactor(self.summaryLabel, 0)

    def path(self) -> str:
        return self._path

    def target(self) -> str | None:
        if self._images is not None:
            return "label"
        if self._frame is None:
            return None
        return self.targetCombo.currentText() or None

    def task_choice(self) -> str:
        """'auto' or one of the core's TASKS, as chosen in `taskCombo`."""
        return self.taskCombo.currentData() or "auto"

    def task(self) -> str | None:
        """The resolved task (never 'auto'); None without a dataset; DataError if the choice cannot apply."""
        if self._images is not None:
            return "multiclass"
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
        column = getattr(facts, "image_column", None)
        as_table, self._as_table = self._as_table, None
        if column and path != as_table:  # a table listing image files: an image dataset, the window opens it so
            self._found_table = (path, frame, facts)
            self.image_table_found.emit(path, column)
            self._found_table = None
            return
        try:
            self.set_dataframe(frame, path, facts=facts)  # type: ignore[arg-type]
        except DataError as exc:
            self._on_loader_failed(path, str(exc))

    def open_as_table(self) -> None:
        """From a slot of `image_table_found`: show the table that lists images as a table after all (a project
        that reads it as one)."""
        if self._found_table is not None:
            path, frame, facts = self._found_table
            self._found_table = None
            try:
                self.set_dataframe(frame, path, facts=facts)  # type: ignore[arg-type]
            except DataError as exc:
                self._on_loader_failed(path, str(exc))

    def _on_readAsTableButton_clicked(self) -> None:
        self._as_table = self._path
        self.open_file(self._path)

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
        if not self._updating and self._images is not None and self._images.get("image_column"):
            self.image_label_chosen.emit(self.targetCombo.currentText())
            return
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
        if self._images is not None:
            return
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
