"""The model builder: the layer stack as an editable table, its per-layer settings, presets and undo.

The stack is a plain list of layer dicts (the spec of ``nnstudio.core.model.spec``); every shape,
parameter count and error shown here comes from ``core.model.spec.analyze``. Every edit is a
``QUndoCommand`` on one ``QUndoStack``, whether it comes from a button, a settings editor, a
preset or a drag inside the list, so undo/redo covers all of them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QIcon,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from nnstudio.core.model.spec import (
    ACTIVATIONS,
    LAYER_DEFAULTS,
    NORMS,
    PRESETS,
    LayerRow,
    ModelSummary,
    analyze,
    default_layers,
)
from nnstudio.gui.widgets import LogSpinBox

__all__ = ["LayerStackModel", "ModelBuilderPanel", "describe_settings"]

Index = QModelIndex | QPersistentModelIndex

LAYER_MIME_TYPE = "application/x-nnstudio-layer-rows"
ERROR_COLOR = QColor("#d62728")
ERROR_BACKGROUND = QColor(214, 39, 40, 38)  # translucent, so it reads on light and dark palettes
MAX_WIDTH = 1_000_000
_MISSING = object()  # a setting absent from the layer dict (its default applies); undo restores the absence
NO_IO_REASON = "No dataset is loaded, so the input and output sizes are unknown; load a dataset to train."

#: What the settings editor calls each setting, for people rather than for torch.
SETTING_LABELS = {
    "out_features": "Outputs",
    "bias": "Bias",
    "negative_slope": "Negative slope",
    "p": "Drop probability",
    "num_features": "Features",
    "normalized_shape": "Features",
    "eps": "Epsilon",
    "momentum": "Momentum",
}

#: What the palette says about each layer type.
LAYER_HINTS = {
    "Linear": "Fully connected layer: every output is a weighted sum of all inputs plus a bias.",
    "ReLU": "Activation: max(0, x).",
    "LeakyReLU": "Activation: x for x > 0, negative_slope·x otherwise.",
    "GELU": "Activation: smooth ReLU used in transformers.",
    "SiLU": "Activation: x·sigmoid(x) (also called swish).",
    "Sigmoid": "Activation: squashes to (0, 1).",
    "Tanh": "Activation: squashes to (-1, 1).",
    "Dropout": "Regularization: zeroes a random fraction p of values while training.",
    "BatchNorm1d": "Normalization over the batch, with a learned scale and shift per feature.",
    "LayerNorm": "Normalization over the features of each sample, with a learned scale and shift.",
}


def _format_number(value: float) -> str:
    return f"{value:g}"


def describe_settings(layer: dict[str, Any]) -> str:
    """A short summary of the settings that matter for one layer, e.g. ``64, no bias`` or ``p 0.2``."""
    layer_type = layer.get("type")
    defaults = LAYER_DEFAULTS.get(layer_type, {})
    values = {**defaults, **{k: v for k, v in layer.items() if k != "type"}}
    parts: list[str] = []
    if layer_type == "Linear":
        parts.append(str(values.get("out_features")))
        if values.get("bias") is False:
            parts.append("no bias")
    elif layer_type == "LeakyReLU":
        parts.append(f"slope {_format_number(values.get('negative_slope', 0.01))}")
    elif layer_type == "Dropout":
        parts.append(f"p {_format_number(values.get('p', 0.1))}")
    elif layer_type in NORMS:
        size = values.get(NORMS[layer_type])
        if size != "auto":
            parts.append(str(size))
        for key in ("eps", "momentum"):
            if key in defaults and values.get(key) != defaults[key]:
                parts.append(f"{key} {_format_number(values[key])}" if isinstance(values[key], (int, float))
                             else f"{key} {values[key]!r}")
    return ", ".join(parts)


def _settings_tooltip(row: LayerRow) -> str:
    lines = [f"Layer {row.index}: {row.type}"]
    for key, value in row.settings.items():
        shown = "true" if value is True else "false" if value is False else value
        lines.append(f"{key} = {shown}")
    hint = LAYER_HINTS.get(row.type)
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def _has_weights(layer_type: str) -> bool:
    return layer_type == "Linear" or layer_type in NORMS


# --------------------------------------------------------------------------------------------
# Undo commands: each calls one primitive of the model, which keeps views and summary in step.
# --------------------------------------------------------------------------------------------


class _InsertLayerCommand(QUndoCommand):
    def __init__(self, model: LayerStackModel, row: int, layer: dict[str, Any], text: str):
        super().__init__(text)
        self._model, self._row, self._layer = model, row, copy.deepcopy(layer)

    def redo(self) -> None:
        self._model._insert(self._row, self._layer)

    def undo(self) -> None:
        self._model._remove(self._row)


class _RemoveLayerCommand(QUndoCommand):
    def __init__(self, model: LayerStackModel, row: int, text: str):
        super().__init__(text)
        self._model, self._row = model, row
        self._layer = copy.deepcopy(model._layers[row])

    def redo(self) -> None:
        self._model._remove(self._row)

    def undo(self) -> None:
        self._model._insert(self._row, self._layer)


class _MoveLayerCommand(QUndoCommand):
    def __init__(self, model: LayerStackModel, source: int, target: int, text: str):
        super().__init__(text)
        self._model, self._source, self._target = model, source, target

    def redo(self) -> None:
        self._model._move(self._source, self._target)

    def undo(self) -> None:
        self._model._move(self._target, self._source)


class _EditSettingCommand(QUndoCommand):
    """One setting of one layer; consecutive edits of the same setting merge (a spin box dragged
    from 64 to 128 is one undo step), and an edit merged back to where it started disappears."""

    ID = 0x4E4E

    def __init__(self, model: LayerStackModel, row: int, key: str, old: Any, new: Any, text: str):
        super().__init__(text)
        self._model, self._row, self._key = model, row, key
        self._old, self._new = old, new

    def id(self) -> int:
        return self.ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _EditSettingCommand) or (other._row, other._key) != (self._row, self._key):
            return False
        self._new = other._new
        self.setText(other.text())
        if self._new is self._old or (self._new == self._old and type(self._new) is type(self._old)):
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        self._model._set_value(self._row, self._key, self._new)

    def undo(self) -> None:
        self._model._set_value(self._row, self._key, self._old)


class _ReplaceLayersCommand(QUndoCommand):
    def __init__(self, model: LayerStackModel, layers: list[dict[str, Any]], text: str):
        super().__init__(text)
        self._model = model
        self._old = copy.deepcopy(model._layers)
        self._new = copy.deepcopy(layers)

    def redo(self) -> None:
        self._model._replace(self._new)

    def undo(self) -> None:
        self._model._replace(self._old)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class LayerStackModel(QAbstractTableModel):
    """A table over the layer list: #, layer (type and settings), output shape, parameters.

    Rows are the layer dicts; shapes, parameter counts and errors come from ``core.model.spec.analyze``
    and are recomputed on every change. Editing methods (``insert_layer``, ``remove_layer``,
    ``move_layer``, ``set_setting``, ``replace_layers``, and the Qt ``moveRows``/``dropMimeData``
    used by drag and drop) push commands on ``undo_stack``.
    """

    # "#" is the last logical column (views show it first): column 0 holds what identifies a row
    # and does not change when rows move around it, as QAbstractItemModelTester expects.
    COLUMNS = ("Layer", "Output", "Params", "#")
    LAYER_COLUMN, OUTPUT_COLUMN, PARAMS_COLUMN, NUMBER_COLUMN = range(4)
    DETAIL_SEPARATOR = "  "  # between the type and its settings in the layer column

    LayerRole = Qt.ItemDataRole.UserRole + 1  # a copy of the layer dict
    ErrorRole = Qt.ItemDataRole.UserRole + 2  # the layer's error message, or None
    ParamsRole = Qt.ItemDataRole.UserRole + 3  # parameter count as int
    OutFeaturesRole = Qt.ItemDataRole.UserRole + 4  # output width as int, or None when unknown

    #: The layer list changed (any edit, undo or redo).
    layers_changed = Signal()
    #: Shapes, parameter counts or errors were recomputed (after an edit or new input/output sizes).
    summary_changed = Signal()
    #: The last applied command touched this row (-1: none); views make it current.
    row_touched = Signal(int)

    def __init__(self, layers: list[dict[str, Any]] | None = None, undo_stack: QUndoStack | None = None,
                 parent=None):
        super().__init__(parent)
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self._layers: list[dict[str, Any]] = copy.deepcopy(layers) if layers is not None else []
        self._in_features: int | None = None
        self._n_outputs: int | None = None
        self._summary = ModelSummary()
        self._unknown_params: set[int] = set()
        self._warning_icon = QIcon()
        self._analyze()

    # ---- state -------------------------------------------------------------------------------

    def layers(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._layers)

    def layer(self, row: int) -> dict[str, Any]:
        return copy.deepcopy(self._layers[row])

    def summary(self) -> ModelSummary:
        return self._summary

    def io(self) -> tuple[int | None, int | None]:
        return self._in_features, self._n_outputs

    def set_io(self, in_features: int | None, n_outputs: int | None) -> None:
        if (in_features, n_outputs) == (self._in_features, self._n_outputs):
            return
        self._in_features, self._n_outputs = in_features, n_outputs
        self._refresh()

    def set_warning_icon(self, icon: QIcon) -> None:
        self._warning_icon = icon

    # ---- undoable edits ----------------------------------------------------------------------

    def insert_layer(self, row: int, layer: dict[str, Any], text: str | None = None) -> None:
        row = max(0, min(row, len(self._layers)))
        self.undo_stack.push(_InsertLayerCommand(self, row, layer, text or f"Add {layer.get('type', 'layer')}"))

    def remove_layer(self, row: int) -> None:
        if 0 <= row < len(self._layers):
            self.undo_stack.push(_RemoveLayerCommand(self, row, f"Remove layer {row + 1} {self._type(row)}"))

    def duplicate_layer(self, row: int) -> None:
        if 0 <= row < len(self._layers):
            self.insert_layer(row + 1, self._layers[row], f"Duplicate layer {row + 1} {self._type(row)}")

    def move_layer(self, source: int, target: int) -> bool:
        """Move one layer so that it ends up at index ``target``."""
        n = len(self._layers)
        if not (0 <= source < n and 0 <= target < n) or source == target:
            return False
        self.undo_stack.push(_MoveLayerCommand(self, source, target,
                                               f"Move layer {source + 1} {self._type(source)} to {target + 1}"))
        return True

    def set_setting(self, row: int, key: str, value: Any) -> None:
        if not 0 <= row < len(self._layers):
            return
        layer = self._layers[row]
        defaults = LAYER_DEFAULTS.get(layer.get("type"), {})
        current = layer.get(key, defaults.get(key))
        if current == value and type(current) is type(value):
            return
        old = layer.get(key, _MISSING)
        label = SETTING_LABELS.get(key, key).lower()
        self.undo_stack.push(_EditSettingCommand(self, row, key, old, value,
                                                 f"Set {label} of layer {row + 1} {self._type(row)}"))

    def replace_layers(self, layers: list[dict[str, Any]], text: str = "Replace layers") -> None:
        if layers == self._layers:
            return
        self.undo_stack.push(_ReplaceLayersCommand(self, layers, text))

    def reset_layers(self, layers: list[dict[str, Any]]) -> None:
        """Replace the stack without undo (a loaded checkpoint or project); the undo history goes too,
        since its commands describe a stack that no longer exists."""
        self.undo_stack.clear()
        self._replace(copy.deepcopy(layers))

    # ---- primitives, called only by the commands -------------------------------------------------

    # Each primitive re-analyzes before the end*() call, so views reading rows on rowsInserted,
    # rowsRemoved or rowsMoved already see the new stack.

    def _insert(self, row: int, layer: dict[str, Any]) -> None:
        self.beginInsertRows(QModelIndex(), row, row)
        self._layers.insert(row, copy.deepcopy(layer))
        self._analyze()
        self.endInsertRows()
        self._changed(row)

    def _remove(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._layers[row]
        self._analyze()
        self.endRemoveRows()
        self._changed(min(row, len(self._layers) - 1))

    def _move(self, source: int, target: int) -> None:
        destination = target + 1 if target > source else target
        if not self.beginMoveRows(QModelIndex(), source, source, QModelIndex(), destination):
            return
        self._layers.insert(target, self._layers.pop(source))
        self._analyze()
        self.endMoveRows()
        self._changed(target)

    def _set_value(self, row: int, key: str, value: Any) -> None:
        if value is _MISSING:
            self._layers[row].pop(key, None)
        else:
            self._layers[row][key] = copy.deepcopy(value)
        self._analyze()
        self._changed(row)

    def _replace(self, layers: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self._layers = copy.deepcopy(layers)
        self._analyze()
        self.endResetModel()
        self.summary_changed.emit()
        self.layers_changed.emit()
        self.row_touched.emit(0 if self._layers else -1)

    def _changed(self, row: int) -> None:
        self._notify()
        self.layers_changed.emit()
        self.row_touched.emit(row)

    def _type(self, row: int) -> str:
        layer = self._layers[row]
        return str(layer.get("type", "?")) if isinstance(layer, dict) else "?"

    def _analyze(self) -> None:
        if self._n_outputs is not None:
            summary = analyze(self._layers, self._in_features, self._n_outputs)
            unknown = set()
        else:
            # No dataset: analyze with two different output sizes and keep only what does not depend
            # on it. A shape or count that differs is unknown ('?'); an error that differs is not real.
            one = analyze(self._layers, self._in_features, 1)
            two = analyze(self._layers, self._in_features, 2)
            rows, unknown = [], set()
            for a, b in zip(one.rows, two.rows):
                if a.params != b.params:
                    unknown.add(a.index - 1)
                rows.append(LayerRow(a.index, a.type, a.settings,
                                     a.in_features if a.in_features == b.in_features else None,
                                     a.out_features if a.out_features == b.out_features else None,
                                     a.params if a.params == b.params else 0,
                                     a.error if a.error == b.error else None))
            summary = ModelSummary(rows, [e for e in one.errors if e in two.errors])
        self._summary = summary
        self._unknown_params = unknown | {row.index - 1 for row in summary.rows
                                          if row.params == 0 and _has_weights(row.type) and row.in_features is None}

    def params_known(self) -> bool:
        """False while some layer's parameter count depends on a size not yet known (no dataset)."""
        return not self._unknown_params

    def _refresh(self) -> None:
        self._analyze()
        self._notify()

    def _notify(self) -> None:
        if self._layers:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._layers) - 1, len(self.COLUMNS) - 1))
        self.summary_changed.emit()

    # ---- Qt model API ------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._layers)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return ("Layer type and its main settings", "Shape of the layer's output; N is the batch size",
                    "Trainable parameters", "Position in the stack")[section]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self._alignment(section)
        return None

    @staticmethod
    def _alignment(column: int) -> Qt.AlignmentFlag:
        if column == LayerStackModel.PARAMS_COLUMN:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if column == LayerStackModel.NUMBER_COLUMN:
            return Qt.AlignmentFlag.AlignCenter
        return Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._summary.rows):
            return None
        row = self._summary.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if row.error:
                return row.error
            return _settings_tooltip(row)
        if role == Qt.ItemDataRole.DecorationRole:
            if row.error and column == self.LAYER_COLUMN and not self._warning_icon.isNull():
                return self._warning_icon
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if row.error:
                return QBrush(ERROR_COLOR)
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(ERROR_BACKGROUND) if row.error else None
        if role == Qt.ItemDataRole.FontRole:
            if row.error and column == self.LAYER_COLUMN:
                font = QFont()
                font.setBold(True)
                return font
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self._alignment(column)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            text = f"{self._display(row, self.LAYER_COLUMN)}, output {row.out_shape}, {row.params} parameters"
            return f"{text}; error: {row.error}" if row.error else text
        if role == self.LayerRole:
            return copy.deepcopy(self._layers[index.row()])
        if role == self.ErrorRole:
            return row.error
        if role == self.ParamsRole:
            return row.params
        if role == self.OutFeaturesRole:
            return row.out_features
        return None

    def _display(self, row: LayerRow, column: int) -> str:
        if column == self.NUMBER_COLUMN:
            return str(row.index)
        if column == self.LAYER_COLUMN:
            layer = self._layers[row.index - 1]
            details = describe_settings(layer) if isinstance(layer, dict) else ""
            return f"{row.type}{self.DETAIL_SEPARATOR}{details}" if details else row.type
        if column == self.OUTPUT_COLUMN:
            return row.out_shape
        if column == self.PARAMS_COLUMN:
            if row.index - 1 in self._unknown_params:
                return "?"
            return f"{row.params:,}" if row.params else "–"
        return ""

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        names.update({self.LayerRole: QByteArray(b"layer"), self.ErrorRole: QByteArray(b"error"),
                      self.ParamsRole: QByteArray(b"params"), self.OutFeaturesRole: QByteArray(b"outFeatures")})
        return names

    # ---- reordering: buttons, keyboard and drag and drop all end in moveRows -------------------

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled  # drops land between rows, never onto one
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME_TYPE]

    def mimeData(self, indexes) -> QMimeData:
        rows = sorted({index.row() for index in indexes if index.isValid()})
        data = QMimeData()
        data.setData(LAYER_MIME_TYPE, QByteArray(json.dumps(rows).encode()))
        return data

    @staticmethod
    def _rows_from(data: QMimeData) -> list[int]:
        if data is None or not data.hasFormat(LAYER_MIME_TYPE):
            return []
        try:
            rows = json.loads(bytes(data.data(LAYER_MIME_TYPE).data()).decode())
        except (ValueError, UnicodeDecodeError):
            return []
        if not isinstance(rows, list):
            return []
        return [r for r in rows if isinstance(r, int) and not isinstance(r, bool)]

    def canDropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index) -> bool:
        rows = self._rows_from(data)
        return (action == Qt.DropAction.MoveAction and len(rows) == 1 and 0 <= rows[0] < len(self._layers))

    def dropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index) -> bool:
        """Move the dragged layer before ``row`` (the end when -1), as one undoable command.

        The move is done here rather than by Qt's default insert-then-remove, and the model has no
        ``removeRows``, so the view's cleanup after a move-drop leaves the stack alone.
        """
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        if parent.isValid():
            row = parent.row()
        if row < 0 or row > len(self._layers):
            row = len(self._layers)
        return self.moveRows(QModelIndex(), self._rows_from(data)[0], 1, QModelIndex(), row)

    def moveRows(self, sourceParent: Index, sourceRow: int, count: int, destinationParent: Index,
                 destinationChild: int) -> bool:
        """Qt's move (``destinationChild`` is the row to move before, counted before the move); one row at a time."""
        if sourceParent.isValid() or destinationParent.isValid() or count != 1:
            return False
        n = len(self._layers)
        if not (0 <= sourceRow < n and 0 <= destinationChild <= n):
            return False
        if destinationChild in (sourceRow, sourceRow + 1):
            return False
        target = destinationChild if destinationChild < sourceRow else destinationChild - 1
        return self.move_layer(sourceRow, target)


# --------------------------------------------------------------------------------------------
# Small widgets
# --------------------------------------------------------------------------------------------


def _muted(palette: QPalette) -> QColor:
    """Secondary text: between the text and the background, readable in light and dark themes."""
    text, base = palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Window)
    return QColor(*(round(0.6 * a + 0.4 * b) for a, b in zip(text.getRgb()[:3], base.getRgb()[:3])))


def _drawn_icon(kind: str, color: QColor) -> QIcon:
    """Small line icons for when the platform has no icon theme (Xvfb, some Linux desktops)."""
    icon = QIcon()
    for size in (16, 32):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.scale(size / 16, size / 16)
        pen = QPen(color, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        path = QPainterPath()
        if kind == "add":
            path.moveTo(8, 3); path.lineTo(8, 13); path.moveTo(3, 8); path.lineTo(13, 8)
        elif kind == "remove":
            path.moveTo(3, 8); path.lineTo(13, 8)
        elif kind == "duplicate":
            path.addRoundedRect(2.5, 5.5, 8, 8, 1.5, 1.5)
            path.moveTo(5.5, 3.5); path.lineTo(5.5, 3.0); path.arcTo(5.5, 2.5, 2, 2, 180, -90)
            path.moveTo(6.5, 2.5); path.lineTo(12.5, 2.5); path.arcTo(11.5, 2.5, 2, 2, 90, -90)
            path.lineTo(13.5, 9.5)
        elif kind == "up":
            path.moveTo(3.5, 10.5); path.lineTo(8, 5.5); path.lineTo(12.5, 10.5)
        elif kind == "down":
            path.moveTo(3.5, 5.5); path.lineTo(8, 10.5); path.lineTo(12.5, 5.5)
        elif kind in ("undo", "redo"):
            path.moveTo(3, 7); path.lineTo(10, 7); path.cubicTo(14.5, 7, 14.5, 13, 10, 13); path.lineTo(7, 13)
            path.moveTo(5.5, 4.5); path.lineTo(3, 7); path.lineTo(5.5, 9.5)
            if kind == "redo":
                painter.translate(16, 0)
                painter.scale(-1, 1)
        painter.drawPath(path)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


class _LayerDelegate(QStyledItemDelegate):
    """Roomier rows, and in the layer column the type in full text with its settings muted beside it."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width() + 6, max(size.height() + 8, 24))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if index.column() != LayerStackModel.LAYER_COLUMN:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        layer_type, _, details = opt.text.partition(LayerStackModel.DETAIL_SEPARATOR)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is None:
            super().paint(painter, option, index)
            return
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget).adjusted(3, 0, -3, 0)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        enabled = bool(opt.state & QStyle.StateFlag.State_Enabled)
        group = QPalette.ColorGroup.Normal if enabled else QPalette.ColorGroup.Disabled
        if selected:
            main = opt.palette.color(group, QPalette.ColorRole.HighlightedText)
            muted = main
        else:
            error = index.data(LayerStackModel.ErrorRole)
            main = ERROR_COLOR if error else opt.palette.color(group, QPalette.ColorRole.Text)
            muted = ERROR_COLOR if error else _muted(opt.palette)
        painter.save()
        painter.setFont(opt.font)
        metrics = QFontMetrics(opt.font)
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.setPen(main)
        painter.drawText(rect, align, metrics.elidedText(layer_type, Qt.TextElideMode.ElideRight, rect.width()))
        used = metrics.horizontalAdvance(layer_type) + metrics.horizontalAdvance("  ")
        if details and used < rect.width():
            plain = QFont(opt.font)
            plain.setBold(False)
            painter.setFont(plain)
            painter.setPen(muted)
            rest = rect.adjusted(used, 0, 0, 0)
            painter.drawText(rest, align, QFontMetrics(plain).elidedText(details, Qt.TextElideMode.ElideRight,
                                                                         rest.width()))
        painter.restore()


def _no_wheel_focus(widget: QWidget) -> QWidget:
    """Spin boxes in a scrolling dock should not change when the wheel merely passes over them."""
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    return widget


# --------------------------------------------------------------------------------------------
# The panel
# --------------------------------------------------------------------------------------------


class ModelBuilderPanel(QWidget):
    """The layer stack with its palette, reordering buttons, presets, settings editor and summary.

    ``set_io`` gives it the dataset's input and output sizes; ``layers()``/``set_layers()`` read and
    replace the spec; ``is_valid()`` and ``validity_changed`` tell the window whether Train may run.
    """

    #: The layer list changed (any edit, undo, redo, preset or ``set_layers``).
    layers_changed = Signal()
    #: Whether the stack can be trained now, and if not the first reason (naming the layer).
    validity_changed = Signal(bool, str)
    #: The pointer is over this layer's row (0-based); -1 when it leaves the list.
    layer_hovered = Signal(int)

    def __init__(self, layers: list[dict[str, Any]] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setObjectName("undo_stack")
        self.model = LayerStackModel(default_layers() if layers is None else layers, self.undo_stack, self)
        self.model.setObjectName("model")
        self.model.set_warning_icon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        self._valid: tuple[bool, str] = (False, "")
        self._loading_editor = False
        self._syncing_preset = False
        self._build()
        self._connect()
        self._valid = self._compute_validity()
        self._sync_all()
        self._select_row(0 if self.model.rowCount() else -1)

    # ---- public API --------------------------------------------------------------------------

    def set_io(self, in_features: int | None, n_outputs: int | None) -> None:
        """The loaded dataset's number of input features and of model outputs (None: no dataset)."""
        self.model.set_io(in_features, n_outputs)

    def layers(self) -> list[dict[str, Any]]:
        return self.model.layers()

    def set_layers(self, layers: list[dict[str, Any]], undoable: bool = True) -> None:
        """Replace the stack; ``undoable=False`` (a checkpoint or project was opened) also clears the history."""
        if undoable:
            self.model.replace_layers(layers, "Replace layers")
        else:
            self.model.reset_layers(layers)

    def summary(self) -> ModelSummary:
        return self.model.summary()

    def is_valid(self) -> bool:
        return self._valid[0]

    def invalid_reason(self) -> str:
        return self._valid[1]

    def current_row(self) -> int:
        index = self.layerList.currentIndex()
        return index.row() if index.isValid() else -1

    # ---- construction ------------------------------------------------------------------------

    def _build(self) -> None:
        style = self.style()
        self._icons: dict[QToolButton, tuple[QIcon.ThemeIcon, str]] = {}
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(8)

        # Preset picker: shows the preset the stack matches, or "Custom".
        preset_row = QHBoxLayout()
        preset_row.setSpacing(6)
        preset_label = QLabel("&Preset")
        self.presetCombo = QComboBox()
        self.presetCombo.setObjectName("presetCombo")
        self.presetCombo.addItem("Custom")
        for name in PRESETS:
            self.presetCombo.addItem(name)
        self.presetCombo.setToolTip("Replace the stack with a ready-made architecture (undoable)")
        self.presetCombo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.presetCombo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.presetCombo.setMinimumContentsLength(12)
        preset_label.setBuddy(self.presetCombo)
        preset_row.addWidget(preset_label)
        preset_row.addWidget(self.presetCombo, 1)
        root.addLayout(preset_row)

        # Input/output sizes from the dataset, and the history.
        io_row = QHBoxLayout()
        io_row.setSpacing(4)
        self.ioLabel = QLabel()
        self.ioLabel.setObjectName("ioLabel")
        self.ioLabel.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._mute(self.ioLabel)
        self.undoButton = self._tool_button("undoButton", "Undo", QIcon.ThemeIcon.EditUndo, "undo")
        self.redoButton = self._tool_button("redoButton", "Redo", QIcon.ThemeIcon.EditRedo, "redo")
        io_row.addWidget(self.ioLabel, 1)
        io_row.addWidget(self.undoButton)
        io_row.addWidget(self.redoButton)
        root.addLayout(io_row)

        # The stack.
        self.layerList = QTreeView()
        self.layerList.setObjectName("layerList")
        self.layerList.setModel(self.model)
        self.layerList.setRootIsDecorated(False)
        self.layerList.setItemsExpandable(False)
        self.layerList.setUniformRowHeights(True)
        self.layerList.setAlternatingRowColors(True)
        self.layerList.setAllColumnsShowFocus(True)
        self.layerList.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.layerList.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.layerList.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.layerList.setDragEnabled(True)
        self.layerList.setAcceptDrops(True)
        self.layerList.setDropIndicatorShown(True)
        self.layerList.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.layerList.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.layerList.setDragDropOverwriteMode(False)
        self.layerList.setIconSize(QSize(14, 14))
        self.layerList.setItemDelegate(_LayerDelegate(self.layerList))
        self.layerList.setMinimumHeight(170)
        self.layerList.setMouseTracking(True)
        self.layerList.viewport().installEventFilter(self)
        self.layerList.setToolTip("Drag a layer to reorder; Delete removes, Ctrl+D duplicates, Alt+↑/↓ moves")
        header = self.layerList.header()
        header.setStretchLastSection(False)
        header.setSectionsMovable(False)
        header.setSectionResizeMode(LayerStackModel.NUMBER_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(LayerStackModel.LAYER_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(LayerStackModel.OUTPUT_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(LayerStackModel.PARAMS_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.moveSection(header.visualIndex(LayerStackModel.NUMBER_COLUMN), 0)
        root.addWidget(self.layerList, 1)

        # Palette and stack buttons.
        add_row = QHBoxLayout()
        add_row.setSpacing(6)
        self.layerPalette = QComboBox()
        self.layerPalette.setObjectName("layerPalette")
        self.layerPalette.setToolTip("Layer type to add after the selected layer")
        groups = (("Linear",), ACTIVATIONS, ("Dropout",), tuple(NORMS))
        for number, group in enumerate(groups):
            if number:
                self.layerPalette.insertSeparator(self.layerPalette.count())
            for layer_type in group:
                self.layerPalette.addItem(layer_type, layer_type)
                self.layerPalette.setItemData(self.layerPalette.count() - 1, LAYER_HINTS.get(layer_type, ""),
                                              Qt.ItemDataRole.ToolTipRole)
        for layer_type in LAYER_DEFAULTS:  # any type the core adds later still shows up
            if self.layerPalette.findData(layer_type) < 0:
                self.layerPalette.addItem(layer_type, layer_type)
        self.layerPalette.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.addLayerButton = self._tool_button("addLayerButton", "Add", QIcon.ThemeIcon.ListAdd,
                                                "add", text_beside=True)
        self.addLayerButton.setToolTip("Add the chosen layer type after the selected layer")
        add_row.addWidget(self.layerPalette, 1)
        add_row.addWidget(self.addLayerButton)
        root.addLayout(add_row)

        edit_row = QHBoxLayout()
        edit_row.setSpacing(4)
        self.duplicateLayerButton = self._tool_button("duplicateLayerButton", "Duplicate", QIcon.ThemeIcon.EditCopy,
                                                      "duplicate", text_beside=True)
        self.removeLayerButton = self._tool_button("removeLayerButton", "Remove", QIcon.ThemeIcon.ListRemove,
                                                   "remove", text_beside=True)
        self.moveUpButton = self._tool_button("moveUpButton", "Move up", QIcon.ThemeIcon.GoUp,
                                              "up")
        self.moveDownButton = self._tool_button("moveDownButton", "Move down", QIcon.ThemeIcon.GoDown,
                                                "down")
        edit_row.addWidget(self.duplicateLayerButton)
        edit_row.addWidget(self.removeLayerButton)
        edit_row.addStretch(1)
        edit_row.addWidget(self.moveUpButton)
        edit_row.addWidget(self.moveDownButton)
        root.addLayout(edit_row)

        # Summary: total or first error.
        summary_row = QHBoxLayout()
        summary_row.setSpacing(6)
        self.summaryIcon = QLabel()
        self.summaryIcon.setObjectName("summaryIcon")
        self.summaryIcon.setPixmap(style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(16, 16))
        self.summaryIcon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.modelSummaryLabel = QLabel()
        self.modelSummaryLabel.setObjectName("modelSummaryLabel")
        self.modelSummaryLabel.setWordWrap(True)
        self.modelSummaryLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.modelSummaryLabel.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        summary_row.addWidget(self.summaryIcon, 0, Qt.AlignmentFlag.AlignTop)
        summary_row.addWidget(self.modelSummaryLabel, 1)
        root.addLayout(summary_row)

        # Settings of the selected layer.
        self.layerSettingsBox = QGroupBox("Layer settings")
        self.layerSettingsBox.setObjectName("layerSettingsBox")
        box_layout = QVBoxLayout(self.layerSettingsBox)
        box_layout.setContentsMargins(10, 8, 10, 10)
        box_layout.setSpacing(6)
        self.layerHintLabel = QLabel()
        self.layerHintLabel.setObjectName("layerHintLabel")
        self.layerHintLabel.setWordWrap(True)
        self.layerHintLabel.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._mute(self.layerHintLabel)
        box_layout.addWidget(self.layerHintLabel)
        self.layerSettingsForm = QWidget()
        self.layerSettingsForm.setObjectName("layerSettingsForm")
        self.settingsLayout = QFormLayout(self.layerSettingsForm)
        self.settingsLayout.setContentsMargins(0, 0, 0, 0)
        self.settingsLayout.setHorizontalSpacing(12)
        self.settingsLayout.setVerticalSpacing(6)
        self.settingsLayout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.settingsLayout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        box_layout.addWidget(self.layerSettingsForm)
        self.layerSettingsBox.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        root.addWidget(self.layerSettingsBox)

        self.outFeaturesSpin = _no_wheel_focus(QSpinBox())
        self.outFeaturesSpin.setObjectName("outFeaturesSpin")
        self.outFeaturesSpin.setRange(1, MAX_WIDTH)
        self.outFeaturesSpin.setGroupSeparatorShown(True)
        self.outFeaturesSpin.setToolTip("Number of output features (the layer's width)")
        self.outFeaturesAutoCheck = QCheckBox("auto")
        self.outFeaturesAutoCheck.setObjectName("outFeaturesAutoCheck")
        self.outFeaturesAutoCheck.setToolTip("Output as many values as the task needs (only on the last Linear layer)")
        self.biasCheck = QCheckBox("learn a bias")
        self.biasCheck.setObjectName("biasCheck")
        self.negativeSlopeSpin = _no_wheel_focus(QDoubleSpinBox())
        self.negativeSlopeSpin.setObjectName("negativeSlopeSpin")
        self.negativeSlopeSpin.setRange(0.0, 10.0)
        self.negativeSlopeSpin.setDecimals(3)
        self.negativeSlopeSpin.setSingleStep(0.01)
        self.dropoutSpin = _no_wheel_focus(QDoubleSpinBox())
        self.dropoutSpin.setObjectName("dropoutSpin")
        self.dropoutSpin.setRange(0.0, 0.99)
        self.dropoutSpin.setDecimals(2)
        self.dropoutSpin.setSingleStep(0.05)
        self.dropoutSpin.setToolTip("Fraction of values zeroed while training, in [0, 1)")
        self.featuresSpin = _no_wheel_focus(QSpinBox())
        self.featuresSpin.setObjectName("featuresSpin")
        self.featuresSpin.setRange(1, MAX_WIDTH)
        self.featuresSpin.setGroupSeparatorShown(True)
        self.featuresSpin.setToolTip("Number of features normalized; must match the previous layer's output")
        self.featuresAutoCheck = QCheckBox("auto")
        self.featuresAutoCheck.setObjectName("featuresAutoCheck")
        self.featuresAutoCheck.setToolTip("Use the previous layer's output width")
        self.epsSpin = _no_wheel_focus(LogSpinBox(1e-12, 1.0, mantissas=(1,)))
        self.epsSpin.setObjectName("epsSpin")
        self.epsSpin.setToolTip("Added to the variance for numerical stability; arrows step by ×10")
        self.momentumSpin = _no_wheel_focus(QDoubleSpinBox())
        self.momentumSpin.setObjectName("momentumSpin")
        self.momentumSpin.setRange(0.0, 1.0)
        self.momentumSpin.setDecimals(3)
        self.momentumSpin.setSingleStep(0.01)
        self.momentumSpin.setToolTip("Weight of the current batch in the running mean and variance")

        self._form_rows: dict[str, QWidget] = {
            "out_features": self._pair(self.outFeaturesSpin, self.outFeaturesAutoCheck),
            "bias": self.biasCheck,
            "negative_slope": self.negativeSlopeSpin,
            "p": self.dropoutSpin,
            "features": self._pair(self.featuresSpin, self.featuresAutoCheck),
            "eps": self.epsSpin,
            "momentum": self.momentumSpin,
        }
        for key, widget in self._form_rows.items():
            self.settingsLayout.addRow(SETTING_LABELS.get(key, "Features"), widget)
        #: The editor of each setting key, for scripts and tests.
        self.setting_editors: dict[str, QWidget] = {
            "out_features": self.outFeaturesSpin, "bias": self.biasCheck,
            "negative_slope": self.negativeSlopeSpin, "p": self.dropoutSpin,
            "num_features": self.featuresSpin, "normalized_shape": self.featuresSpin,
            "eps": self.epsSpin, "momentum": self.momentumSpin,
        }

        # Keyboard, on the list only so the window's own shortcuts are not shadowed.
        for name, keys, slot in (
            ("removeLayerAction", QKeySequence.StandardKey.Delete, self._on_removeLayerButton_clicked),
            ("duplicateLayerAction", QKeySequence("Ctrl+D"), self._on_duplicateLayerButton_clicked),
            ("moveUpAction", QKeySequence("Alt+Up"), self._on_moveUpButton_clicked),
            ("moveDownAction", QKeySequence("Alt+Down"), self._on_moveDownButton_clicked),
        ):
            action = QAction(self.layerList)
            action.setObjectName(name)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(slot)
            self.layerList.addAction(action)
            setattr(self, name, action)

        self.setMinimumWidth(300)

    def _tool_button(self, name: str, text: str, theme: QIcon.ThemeIcon, fallback: str,
                     text_beside: bool = False) -> QToolButton:
        button = QToolButton()
        button.setObjectName(name)
        button.setText(text)
        button.setToolTip(text)
        button.setAutoRaise(False)
        self._icons[button] = (theme, fallback)
        self._set_icon(button)
        button.setIconSize(QSize(16, 16))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon if text_beside
                                  else Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.setMinimumHeight(26)
        if not text_beside:
            button.setMinimumWidth(28)
        return button

    def _set_icon(self, button: QToolButton) -> None:
        theme, fallback = self._icons[button]
        icon = QIcon.fromTheme(theme)
        if icon.isNull():
            icon = _drawn_icon(fallback, self.palette().color(QPalette.ColorRole.ButtonText))
        button.setIcon(icon)

    def changeEvent(self, event) -> None:
        """Follow light/dark switches: redraw icons and recompute the muted text colour."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange) and hasattr(self, "_icons"):
            for button in self._icons:
                self._set_icon(button)
            for label in (self.ioLabel, self.layerHintLabel):
                label.setPalette(QPalette())
                self._mute(label)
            self.model.set_warning_icon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))

    @staticmethod
    def _pair(spin: QWidget, check: QCheckBox) -> QWidget:
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(spin, 1)
        layout.addWidget(check)
        return box

    @staticmethod
    def _mute(label: QLabel) -> None:
        palette = label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, _muted(palette))
        label.setPalette(palette)

    def _connect(self) -> None:
        self.model.layers_changed.connect(self._on_model_layers_changed)
        self.model.summary_changed.connect(self._on_model_summary_changed)
        self.model.row_touched.connect(self._on_model_row_touched)
        self.layerList.selectionModel().currentRowChanged.connect(self._on_layerList_currentRowChanged)
        self.layerList.entered.connect(self._on_layerList_entered)
        self.addLayerButton.clicked.connect(self._on_addLayerButton_clicked)
        self.removeLayerButton.clicked.connect(self._on_removeLayerButton_clicked)
        self.duplicateLayerButton.clicked.connect(self._on_duplicateLayerButton_clicked)
        self.moveUpButton.clicked.connect(self._on_moveUpButton_clicked)
        self.moveDownButton.clicked.connect(self._on_moveDownButton_clicked)
        self.undoButton.clicked.connect(self.undo_stack.undo)
        self.redoButton.clicked.connect(self.undo_stack.redo)
        self.undo_stack.canUndoChanged.connect(self._on_undo_stack_changed)
        self.undo_stack.canRedoChanged.connect(self._on_undo_stack_changed)
        self.undo_stack.indexChanged.connect(self._on_undo_stack_changed)
        self.presetCombo.currentIndexChanged.connect(self._on_presetCombo_currentIndexChanged)
        self.outFeaturesSpin.valueChanged.connect(self._on_outFeaturesSpin_valueChanged)
        self.outFeaturesAutoCheck.toggled.connect(self._on_outFeaturesAutoCheck_toggled)
        self.biasCheck.toggled.connect(self._on_biasCheck_toggled)
        self.negativeSlopeSpin.valueChanged.connect(self._on_negativeSlopeSpin_valueChanged)
        self.dropoutSpin.valueChanged.connect(self._on_dropoutSpin_valueChanged)
        self.featuresSpin.valueChanged.connect(self._on_featuresSpin_valueChanged)
        self.featuresAutoCheck.toggled.connect(self._on_featuresAutoCheck_toggled)
        self.epsSpin.valueChanged.connect(self._on_epsSpin_valueChanged)
        self.momentumSpin.valueChanged.connect(self._on_momentumSpin_valueChanged)

    def _on_layerList_entered(self, index: QModelIndex) -> None:
        self.layer_hovered.emit(index.row() if index.isValid() else -1)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.layerList.viewport() and event.type() == QEvent.Type.Leave:
            self.layer_hovered.emit(-1)
        return super().eventFilter(watched, event)

    # ---- slots: stack buttons ----------------------------------------------------------------

    def _on_addLayerButton_clicked(self) -> None:
        layer_type = self.layerPalette.currentData() or self.layerPalette.currentText()
        if layer_type not in LAYER_DEFAULTS:
            return
        row = self.current_row()
        self.model.insert_layer(row + 1 if row >= 0 else self.model.rowCount(),
                                {"type": layer_type, **copy.deepcopy(LAYER_DEFAULTS[layer_type])})

    def _on_removeLayerButton_clicked(self) -> None:
        self.model.remove_layer(self.current_row())

    def _on_duplicateLayerButton_clicked(self) -> None:
        self.model.duplicate_layer(self.current_row())

    def _on_moveUpButton_clicked(self) -> None:
        row = self.current_row()
        self.model.move_layer(row, row - 1)

    def _on_moveDownButton_clicked(self) -> None:
        row = self.current_row()
        self.model.move_layer(row, row + 1)

    def _on_presetCombo_currentIndexChanged(self, index: int) -> None:
        if self._syncing_preset or index <= 0:
            return
        name = self.presetCombo.itemText(index)
        self.model.replace_layers(copy.deepcopy(PRESETS[name]), f"Apply preset “{name}”")

    def _on_undo_stack_changed(self, *_args) -> None:
        self.undoButton.setEnabled(self.undo_stack.canUndo())
        self.redoButton.setEnabled(self.undo_stack.canRedo())
        self.undoButton.setToolTip(f"Undo {self.undo_stack.undoText()}" if self.undo_stack.canUndo() else "Undo")
        self.redoButton.setToolTip(f"Redo {self.undo_stack.redoText()}" if self.undo_stack.canRedo() else "Redo")

    # ---- slots: model and selection ----------------------------------------------------------

    def _on_model_layers_changed(self) -> None:
        self._sync_preset()
        self.layers_changed.emit()

    def _on_model_summary_changed(self) -> None:
        self._sync_summary()
        self._sync_editor()
        self._sync_buttons()
        self._update_validity()

    def _on_model_row_touched(self, row: int) -> None:
        self._select_row(row)

    def _on_layerList_currentRowChanged(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._sync_editor()
        self._sync_buttons()

    # ---- slots: settings editor ----------------------------------------------------------------

    def _edit(self, key: str, value: Any) -> None:
        if self._loading_editor:
            return
        row = self.current_row()
        if row >= 0:
            self.model.set_setting(row, key, value)

    def _norm_key(self) -> str | None:
        row = self.current_row()
        return NORMS.get(self.model._type(row)) if row >= 0 else None

    def _on_outFeaturesSpin_valueChanged(self, value: int) -> None:
        if not self.outFeaturesAutoCheck.isChecked():
            self._edit("out_features", int(value))

    def _on_outFeaturesAutoCheck_toggled(self, checked: bool) -> None:
        self.outFeaturesSpin.setEnabled(not checked)
        self._edit("out_features", "auto" if checked else int(self.outFeaturesSpin.value()))

    def _on_biasCheck_toggled(self, checked: bool) -> None:
        self._edit("bias", bool(checked))

    def _on_negativeSlopeSpin_valueChanged(self, value: float) -> None:
        self._edit("negative_slope", float(value))

    def _on_dropoutSpin_valueChanged(self, value: float) -> None:
        self._edit("p", float(value))

    def _on_featuresSpin_valueChanged(self, value: int) -> None:
        key = self._norm_key()
        if key and not self.featuresAutoCheck.isChecked():
            self._edit(key, int(value))

    def _on_featuresAutoCheck_toggled(self, checked: bool) -> None:
        self.featuresSpin.setEnabled(not checked)
        key = self._norm_key()
        if key:
            self._edit(key, "auto" if checked else int(self.featuresSpin.value()))

    def _on_epsSpin_valueChanged(self, value: float) -> None:
        self._edit("eps", float(value))

    def _on_momentumSpin_valueChanged(self, value: float) -> None:
        self._edit("momentum", float(value))

    # ---- keeping the widgets in step with the model ------------------------------------------

    def _select_row(self, row: int) -> None:
        selection = self.layerList.selectionModel()
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row, 0)
            selection.setCurrentIndex(index, selection.SelectionFlag.ClearAndSelect | selection.SelectionFlag.Rows)
            self.layerList.scrollTo(index)
        else:
            selection.clearSelection()
            selection.setCurrentIndex(QModelIndex(), selection.SelectionFlag.Clear)
        self._sync_editor()
        self._sync_buttons()

    def _sync_all(self) -> None:
        self._sync_preset()
        self._sync_summary()
        self._sync_editor()
        self._sync_buttons()
        self._on_undo_stack_changed()

    def _sync_preset(self) -> None:
        layers = self.model.layers()
        match = next((i + 1 for i, preset in enumerate(PRESETS.values()) if preset == layers), 0)
        self._syncing_preset = True
        try:
            self.presetCombo.setCurrentIndex(match)
        finally:
            self._syncing_preset = False

    def _sync_buttons(self) -> None:
        row, n = self.current_row(), self.model.rowCount()
        self.removeLayerButton.setEnabled(row >= 0)
        self.duplicateLayerButton.setEnabled(row >= 0)
        self.moveUpButton.setEnabled(row > 0)
        self.moveDownButton.setEnabled(0 <= row < n - 1)

    def _sync_summary(self) -> None:
        summary = self.model.summary()
        in_features, n_outputs = self.model.io()
        if in_features is None and n_outputs is None:
            self.ioLabel.setText("No dataset loaded · shapes shown as ?")
        else:
            shown = ["?" if size is None else size for size in (in_features, n_outputs)]
            self.ioLabel.setText(f"Input (N, {shown[0]}) → output (N, {shown[1]})")
        n = len(summary.rows)
        if summary.errors:
            more = f" (+{len(summary.errors) - 1} more)" if len(summary.errors) > 1 else ""
            text = summary.errors[0][0].upper() + summary.errors[0][1:] + more
            self.modelSummaryLabel.setText(text)
            self.modelSummaryLabel.setToolTip("\n".join(summary.errors))
            self.modelSummaryLabel.setStyleSheet(f"color: {ERROR_COLOR.name()};")
            self.summaryIcon.setVisible(True)
        else:
            known = self.model.params_known()
            params = f"{summary.total_params:,}" if known else "?"
            noun = "layer" if n == 1 else "layers"
            self.modelSummaryLabel.setText(f"{n} {noun} · {params} parameters")
            self.modelSummaryLabel.setToolTip("" if known else NO_IO_REASON)
            self.modelSummaryLabel.setStyleSheet("font-weight: 600;")
            self.summaryIcon.setVisible(False)

    def _sync_editor(self) -> None:
        row = self.current_row()
        summary = self.model.summary()
        if row < 0 or row >= len(summary.rows):
            self.layerSettingsBox.setTitle("Layer settings")
            self.layerHintLabel.setText("Select a layer to edit its settings.")
            self.layerSettingsForm.setVisible(False)
            return
        info = summary.rows[row]
        layer = self.model._layers[row]
        layer_type = info.type
        defaults = LAYER_DEFAULTS.get(layer_type, {})
        values = {**defaults, **{k: v for k, v in layer.items() if k != "type"}} if isinstance(layer, dict) else {}
        self.layerSettingsBox.setTitle(f"Layer {row + 1} · {layer_type}")
        hint = LAYER_HINTS.get(layer_type, "")
        if not defaults:
            hint = f"{hint} No settings to edit." if hint else "No settings to edit."
        self.layerHintLabel.setText(hint)
        norm_key = NORMS.get(layer_type)
        visible = {key: key in defaults for key in ("out_features", "bias", "negative_slope", "p", "eps", "momentum")}
        visible["features"] = norm_key is not None
        for key, widget in self._form_rows.items():
            self.settingsLayout.setRowVisible(widget, visible[key])
        self.layerSettingsForm.setVisible(any(visible.values()))

        self._loading_editor = True
        try:
            if layer_type == "Linear":
                out = values.get("out_features")
                auto = out == "auto"
                last_linear = max((i for i, l in enumerate(self.model._layers)
                                   if isinstance(l, dict) and l.get("type") == "Linear"), default=-1)
                self.outFeaturesAutoCheck.setVisible(auto or row == last_linear)
                self._set_checked(self.outFeaturesAutoCheck, auto)
                self.outFeaturesSpin.setEnabled(not auto)
                shown = info.out_features if auto else out
                if isinstance(shown, int) and not isinstance(shown, bool):
                    self._set_value(self.outFeaturesSpin, shown)
                self.outFeaturesSpin.setSpecialValueText("")
                self._set_checked(self.biasCheck, bool(values.get("bias", True)))
            if "negative_slope" in defaults:
                self._set_value(self.negativeSlopeSpin, float(values["negative_slope"]))
            if "p" in defaults and isinstance(values.get("p"), (int, float)):
                self._set_value(self.dropoutSpin, float(values["p"]))
            if norm_key:
                size = values.get(norm_key)
                auto = size == "auto"
                self._set_checked(self.featuresAutoCheck, auto)
                self.featuresSpin.setEnabled(not auto)
                shown = info.in_features if auto else size
                if isinstance(shown, int) and not isinstance(shown, bool):
                    self._set_value(self.featuresSpin, shown)
            if "eps" in defaults and isinstance(values.get("eps"), (int, float)):
                self._set_value(self.epsSpin, float(values["eps"]))
            if "momentum" in defaults and isinstance(values.get("momentum"), (int, float)):
                self._set_value(self.momentumSpin, float(values["momentum"]))
        finally:
            self._loading_editor = False

    @staticmethod
    def _set_value(spin: QSpinBox | QDoubleSpinBox, value: float) -> None:
        if spin.value() != value:
            spin.setValue(value)

    @staticmethod
    def _set_checked(check: QCheckBox, checked: bool) -> None:
        if check.isChecked() != checked:
            check.setChecked(checked)

    # ---- validity ----------------------------------------------------------------------------

    def _compute_validity(self) -> tuple[bool, str]:
        summary = self.model.summary()
        if summary.errors:
            return False, summary.errors[0]
        in_features, n_outputs = self.model.io()
        if in_features is None or n_outputs is None:
            return False, NO_IO_REASON
        return True, ""

    def _update_validity(self) -> None:
        state = self._compute_validity()
        if state != self._valid:
            self._valid = state
            self.validity_changed.emit(*state)
