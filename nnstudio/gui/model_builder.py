"""The model builder: the layer stack as an editable table, its per-layer settings, presets and undo.

The stack is a plain list of layer dicts (the spec of ``nnstudio.core.model.spec``); every shape,
parameter count and error shown here comes from ``core.model.spec.analyze``. Every edit is a
``QUndoCommand`` on one ``QUndoStack``, whether it comes from a button, a settings editor, a
preset or a drag inside the list, so undo/redo covers all of them.
"""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QIcon,
    QKeySequence,
    QPalette,
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
    ModelSummary,
    default_layers,
)
from nnstudio.gui.widgets import LogSpinBox
from nnstudio.gui.layer_stack import (ERROR_COLOR, LAYER_HINTS, MAX_WIDTH, NO_IO_REASON, SETTING_LABELS, LayerStackModel,
                                      describe_settings)
from nnstudio.gui.layer_view import _LayerDelegate, _drawn_icon, _muted, _no_wheel_focus

__all__ = ["LayerStackModel", "ModelBuilderPanel", "describe_settings"]  # the stack re-exported with its panel


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
