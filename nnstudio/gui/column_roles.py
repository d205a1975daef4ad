"""The dataset panel's Columns tab: every column with its kind, missing count, role and why it is ignored.

The roles live in the `DatasetPanel` (feature / ignore / target); this table only shows them and turns an
edit of the Role cell into `panel.set_role`. The core (`unusable_features`) says which columns start ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

if TYPE_CHECKING:
    import polars as pl

    from nnstudio.gui.table_model import DataFrameModel

ROLES = ("feature", "ignore", "target")
ROLE_TIPS = {"feature": "an input of the network", "ignore": "left out of the inputs",
             "target": "what the network learns to predict"}
#: Above this many columns the Role cells are combo boxes only while edited (double-click), not all at once.
MAX_PERSISTENT_EDITORS = 300


class RoleSource(Protocol):
    """What the table asks of whoever holds the roles (the dataset panel)."""

    model: DataFrameModel

    def dataframe(self) -> pl.DataFrame | None: ...
    def role(self, name: str) -> str: ...
    def flag(self, name: str) -> str: ...
    def set_role(self, name: str, role: str) -> None: ...


class ColumnRolesModel(QAbstractTableModel):
    """One row per column of the panel's table."""

    HEADERS = ("Column", "Kind", "Missing", "Role", "Why ignored")
    ROLE_COLUMN = 3

    def __init__(self, panel: RoleSource, parent: QObject | None = None):
        super().__init__(parent)
        self._panel = panel
        self._names: list[str] = []
        self._grey = QColor(128, 128, 128)

    def reset(self) -> None:
        self.beginResetModel()
        frame = self._panel.dataframe()
        self._names = [] if frame is None else [str(c) for c in frame.columns]
        self.endResetModel()

    def roles_changed(self) -> None:
        if self._names:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._names) - 1, len(self.HEADERS) - 1))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._names)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
        return base | Qt.ItemFlag.ItemIsEditable if index.column() == self.ROLE_COLUMN else base

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        name = self._names[index.row()]
        col = index.column()
        column_role = self._panel.role(name)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == 0:
                return name
            if col == self.ROLE_COLUMN:
                return column_role
            if col == 4:
                return self._panel.flag(name) if column_role == "ignore" else ""
            info = self._panel.model.column_info(index.row())
            return info.kind if col == 1 else f"{info.missing:,}"
        if role == Qt.ItemDataRole.ToolTipRole:
            reason = self._panel.flag(name)
            tip = f"{name}: {ROLE_TIPS[column_role]}"
            return tip + (f"\nflagged at load: {reason}" if reason else "")
        if role == Qt.ItemDataRole.ForegroundRole and column_role == "ignore" and col != self.ROLE_COLUMN:
            return self._grey
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index: QModelIndex | QPersistentModelIndex, value: Any,
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or index.column() != self.ROLE_COLUMN or value not in ROLES:
            return False
        name = self._names[index.row()]
        if self._panel.role(name) == value:
            return False
        self._panel.set_role(name, value)
        return True

    def name(self, row: int) -> str:
        return self._names[row]


class RoleDelegate(QStyledItemDelegate):
    """A combo box of the three roles; a pick is committed at once (no Enter needed)."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex) -> QWidget:
        combo = QComboBox(parent)
        combo.setObjectName(f"roleCombo_{index.row()}")
        for role in ROLES:
            combo.addItem(role, role)
            combo.setItemData(combo.count() - 1, ROLE_TIPS[role], Qt.ItemDataRole.ToolTipRole)
        combo.activated.connect(self._on_combo_activated)
        return combo

    def setEditorData(self, editor: QWidget, index: QModelIndex) -> None:
        editor.blockSignals(True)
        editor.setCurrentIndex(max(0, editor.findData(index.data(Qt.ItemDataRole.EditRole))))
        editor.blockSignals(False)

    def setModelData(self, editor: QWidget, model: Any, index: QModelIndex) -> None:
        model.setData(index, editor.currentData(), Qt.ItemDataRole.EditRole)

    def _on_combo_activated(self, _index: int) -> None:
        editor = self.sender()
        self.commitData.emit(editor)
