"""The dataset preview as a Qt table model over a polars frame: only the visible cells are formatted, missing
cells shown as missing, the target and ignored columns marked in the header."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from nnstudio.core.data import ColumnInfo, as_table, describe_columns

if TYPE_CHECKING:  # polars loads with the first table (in the loader thread), not with the window
    import polars as pl


MISSING_TEXT = "—"


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
