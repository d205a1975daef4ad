"""The runs of the log folder as a sortable table: overlay, reopen, restore, rename, delete.

Thin: `nnstudio.core.results.runs` reads the folder; this shows its records and turns clicks into requests the
window carries out (the plots, open_checkpoint, the project's config) or into core calls (rename, delete).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QGridLayout, QHeaderView, QInputDialog, QLabel, QMessageBox, QPushButton, QTableView,
    QVBoxLayout, QWidget)

from nnstudio.core.results.runs import RunError, RunRecord, delete_run, list_runs, overlay_problem, rename_run

#: The plots keep the current run and 5 earlier ones.
MAX_OVERLAY = 6
MAX_COLUMN_PX = 240


def _fmt(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _main_metric(scores: dict[str, float]) -> tuple[str, float | None]:
    for name in ("accuracy", "r2", "f1", "mae"):
        if name in scores:
            return name, scores[name]
    return "", None


def _scores_text(scores: dict[str, float]) -> str:
    return "  ".join(f"{k} {_fmt(v)}" for k, v in scores.items())


#: (header, text of a record, sort key of a record)
COLUMNS: list[tuple[str, Callable[[RunRecord], str], Callable[[RunRecord], Any]]] = [
    ("Date", lambda r: r.date.strftime("%Y-%m-%d %H:%M"), lambda r: r.date.timestamp()),
    ("Name", lambda r: r.name, lambda r: r.name.lower()),
    ("Dataset", lambda r: Path(r.dataset).name if r.dataset else "", lambda r: Path(r.dataset).name.lower()),
    ("Target", lambda r: r.target, lambda r: r.target.lower()),
    ("Task", lambda r: r.task, lambda r: r.task),
    ("Layers", lambda r: r.layers, lambda r: r.layers),
    ("Optimizer", lambda r: r.optimizer, lambda r: r.optimizer),
    ("Best val loss", lambda r: _fmt(r.best_val_loss),
     lambda r: r.best_val_loss if r.best_val_loss is not None else math.inf),
    ("Validation", lambda r: _scores_text(r.validation),
     lambda r: -(_main_metric(r.validation)[1] if _main_metric(r.validation)[1] is not None else -math.inf)),
    ("Test", lambda r: _scores_text(r.test),
     lambda r: -(_main_metric(r.test)[1] if _main_metric(r.test)[1] is not None else -math.inf)),
    ("Status", lambda r: r.status, lambda r: r.status),
    ("Checkpoint", lambda r: (Path(r.checkpoint).name + ("" if r.checkpoint_exists else " (missing)"))
     if r.checkpoint else "", lambda r: r.checkpoint or ""),
]


class RunsTableModel(QAbstractTableModel):
    """One row per run record; sorting reorders the records (what `QTableView.setSortingEnabled` asks for)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._runs: list[RunRecord] = []
        self._sort: tuple[int, Qt.SortOrder] = (0, Qt.SortOrder.DescendingOrder)

    def set_runs(self, runs: list[RunRecord]) -> None:
        self.beginResetModel()
        self._runs = list(runs)
        self._apply_sort()
        self.endResetModel()

    def runs(self) -> list[RunRecord]:
        return list(self._runs)

    def run_at(self, row: int) -> RunRecord:
        return self._runs[row]

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < len(self._runs)) or not (0 <= index.column() < len(COLUMNS)):
            return None
        run = self._runs[index.row()]
        header, text, _ = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text(run)
        if role == Qt.ItemDataRole.ToolTipRole:
            if header == "Dataset":
                return run.dataset or None
            if header == "Checkpoint":
                return run.checkpoint
            return f"{run.path}" if header == "Name" else (text(run) or None)
        if role == Qt.ItemDataRole.UserRole:
            return str(run.path)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            return COLUMNS[section][0]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS):
            return
        self.layoutAboutToBeChanged.emit()
        before = {id(r): i for i, r in enumerate(self._runs)}
        old_indexes = self.persistentIndexList()
        self._sort = (column, order)
        self._apply_sort()
        after = {id(r): i for i, r in enumerate(self._runs)}
        moved = {i: after[key] for key, i in before.items()}
        self.changePersistentIndexList(old_indexes, [self.index(moved[i.row()], i.column()) for i in old_indexes])
        self.layoutChanged.emit()

    def _apply_sort(self) -> None:
        column, order = self._sort
        key = COLUMNS[column][2]
        self._runs.sort(key=lambda r: (key(r), r.path.name), reverse=order == Qt.SortOrder.DescendingOrder)


class RunsPanel(QWidget):
    """The runs of a log folder. Requests go out as signals; the window carries them out."""

    overlay_requested = Signal(object)  # list[RunRecord] of one task and target
    open_requested = Signal(str)  # a run's checkpoint path
    restore_requested = Signal(object)  # RunRecord
    runs_changed = Signal()  # listed again (after a refresh, rename or delete)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.logdir: Path | None = None
        self.model = RunsTableModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("table")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.table.doubleClicked.connect(self._on_table_double_clicked)
        self.table.setMinimumWidth(120)
        self.folderLabel = QLabel(self)
        self.folderLabel.setObjectName("folderLabel")
        self.folderLabel.setWordWrap(True)
        self.folderLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.noteLabel = QLabel(self)
        self.noteLabel.setObjectName("noteLabel")
        self.noteLabel.setWordWrap(True)

        def button(name: str, text: str, tip: str, slot) -> QPushButton:
            b = QPushButton(text, self)
            b.setObjectName(name)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            setattr(self, name, b)
            return b

        buttons = [
            button("refreshButton", "Refresh", "List the log folder's runs again", self.refresh),
            button("overlayButton", "Overlay", "Show the selected runs' curves on the plots (same task and target)",
                   self._on_overlay_clicked),
            button("openButton", "Open model", "Open the selected run's checkpoint", self._on_open_clicked),
            button("restoreButton", "Restore settings",
                   "Put the selected run's dataset, model and training settings back into the window",
                   self._on_restore_clicked),
            button("renameButton", "Rename…", "Rename the selected run's folder", self._on_rename_clicked),
            button("deleteButton", "Delete…", "Delete the selected runs' folders", self._on_delete_clicked),
        ]
        row = QGridLayout()  # two rows of three: the dock stays as narrow as the dataset panel
        for i, b in enumerate(buttons):
            row.addWidget(b, i // 3, i % 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.folderLabel)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.noteLabel)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self._update_buttons()

    # ------------------------------------------------------------------------------------------ listing
    def set_logdir(self, logdir: str | Path) -> None:
        self.logdir = Path(logdir)
        self.folderLabel.setText(f"Log folder: {self.logdir}")
        self.folderLabel.setToolTip(str(self.logdir))
        self.refresh()

    def refresh(self) -> None:
        """List the log folder again, keeping the selected runs selected."""
        selected = {r.path for r in self.selected_runs()}
        runs = list_runs(self.logdir) if self.logdir is not None else []
        self.model.set_runs(runs)
        self._fit_columns()
        self.select_paths(selected)
        if not runs:
            self.noteLabel.setText("No runs in this folder yet: each training run adds one."
                                   if self.logdir else "")
        self._update_buttons()
        self.runs_changed.emit()

    def _fit_columns(self) -> None:
        """Columns as wide as their text, up to MAX_COLUMN_PX (the tooltip and a wider column show the rest)."""
        self.table.resizeColumnsToContents()
        for column in range(self.model.columnCount()):
            if self.table.columnWidth(column) > MAX_COLUMN_PX:
                self.table.setColumnWidth(column, MAX_COLUMN_PX)

    def select_paths(self, paths) -> None:
        paths = {Path(p) for p in paths}
        sm = self.table.selectionModel()
        sm.clearSelection()
        for row, run in enumerate(self.model.runs()):
            if run.path in paths:
                sm.select(self.model.index(row, 0), sm.SelectionFlag.Select | sm.SelectionFlag.Rows)

    def selected_runs(self) -> list[RunRecord]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.run_at(r) for r in rows if r < self.model.rowCount()]

    def _on_table_selection_changed(self, *_args) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        runs = self.selected_runs()
        one = len(runs) == 1
        problem = overlay_problem(runs)
        self.overlayButton.setEnabled(bool(runs) and not problem and len(runs) <= MAX_OVERLAY)
        self.openButton.setEnabled(one and runs[0].checkpoint_exists)
        self.restoreButton.setEnabled(one and runs[0].config is not None)
        self.renameButton.setEnabled(one)
        self.deleteButton.setEnabled(bool(runs))
        if problem:
            self.noteLabel.setText(f"Cannot overlay: {problem}.")
        elif len(runs) > MAX_OVERLAY:
            self.noteLabel.setText(f"Cannot overlay {len(runs)} runs: the plots show {MAX_OVERLAY} at most.")
        elif one and not runs[0].checkpoint_exists:
            self.noteLabel.setText("This run has no checkpoint to open" + (
                f" ({runs[0].checkpoint} is missing)." if runs[0].checkpoint else
                " (runs trained in the window save one with File → Save checkpoint)."))
        elif self.model.rowCount():
            self.noteLabel.setText("Select runs of the same task and target to overlay their curves.")

    # ------------------------------------------------------------------------------------------ actions
    def _on_overlay_clicked(self) -> None:
        runs = self.selected_runs()
        if runs and not overlay_problem(runs) and len(runs) <= MAX_OVERLAY:
            self.overlay_requested.emit(sorted(runs, key=lambda r: r.date))

    def _on_open_clicked(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1 and runs[0].checkpoint_exists:
            self.open_requested.emit(runs[0].checkpoint)

    def _on_restore_clicked(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1 and runs[0].config is not None:
            self.restore_requested.emit(runs[0])

    def _on_table_double_clicked(self, index: QModelIndex) -> None:
        self._on_overlay_clicked()

    def _on_rename_clicked(self) -> None:
        runs = self.selected_runs()
        if len(runs) != 1:
            return
        name, ok = QInputDialog.getText(self, "Rename run", f"New name for '{runs[0].name}':", text=runs[0].name)
        if ok and name.strip():
            self.rename(runs[0], name)

    def rename(self, run: RunRecord, name: str) -> bool:
        try:
            path = rename_run(run, name)
        except RunError as exc:
            self._show_error("Cannot rename run", str(exc))
            return False
        self.refresh()
        self.select_paths([path])
        return True

    def _on_delete_clicked(self) -> None:
        runs = self.selected_runs()
        if runs and self.confirm_delete(runs):
            self.delete(runs)

    def confirm_delete(self, runs: list[RunRecord]) -> bool:
        """Ask before deleting (a separate method, so tests answer it)."""
        names = ", ".join(f"'{r.name}'" for r in runs[:5]) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")
        answer = QMessageBox.question(
            self, "Delete runs", f"Delete {names}? Their TensorBoard logs are removed from {self.logdir}; "
            "their checkpoints are kept.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def delete(self, runs: list[RunRecord]) -> None:
        errors = []
        for run in runs:
            try:
                delete_run(run)
            except RunError as exc:
                errors.append(str(exc))
        self.refresh()
        if errors:
            self._show_error("Cannot delete run", "\n".join(errors))

    def _show_error(self, title: str, message: str) -> None:
        window = self.window()
        show = getattr(window, "show_error", None)
        if show is not None:
            show(title, message)
        else:
            self.noteLabel.setText(message)
