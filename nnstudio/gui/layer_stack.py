"""The layer stack as a Qt table model over the spec's layer dicts, with the undo commands that are its only
way to change: every shape, parameter count and problem shown comes from `core.model.spec.analyze`."""

from __future__ import annotations

import copy
import json
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QIcon,
    QUndoCommand,
    QUndoStack,
)

from nnstudio.core.model.spec import (
    LAYER_DEFAULTS,
    NORMS,
    LayerRow,
    ModelSummary,
    analyze,
)

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
