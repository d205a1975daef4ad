"""A read-only table model over columns of values, and the table view the evaluation and predict tabs use.

Kept apart from the plots so the predict tab (and the window at start-up) need not import pyqtgraph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import QHeaderView, QTableView, QWidget


class RowsModel(QAbstractTableModel):
    """A read-only table over columns of values (lists or numpy arrays); only visible cells are formatted."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._names: list[str] = []
        self._columns: list[Any] = []
        self._n = 0

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        names = list(rows[0]) if rows else []
        self.set_columns({n: [r.get(n) for r in rows] for n in names})

    def set_columns(self, columns: dict[str, Any]) -> None:
        self.beginResetModel()
        self._names = list(columns)
        self._columns = list(columns.values())
        self._n = len(self._columns[0]) if self._columns else 0
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._n

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._names)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._columns[index.column()][index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return format_value(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(value, (int, float, np.number)):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._names[section] if section < len(self._names) else None
        return str(section + 1)

    def cell(self, row: int, column: str) -> Any:
        return self._columns[self._names.index(column)][row]


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return "–" if not np.isfinite(value) else f"{float(value):.4g}"
    return str(value)


def table_view(name: str, parent: QWidget) -> tuple[QTableView, RowsModel]:
    view = QTableView(parent)
    view.setObjectName(name)
    model = RowsModel(view)
    view.setModel(model)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(False)
    view.verticalHeader().setVisible(False)
    return view, model


