"""The model builder panel: every edit through the widgets people use, undo/redo, validity, the Qt model."""

from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import QMimeData, QModelIndex, QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QCheckBox, QComboBox, QLabel, QWidget

from nnstudio.core.model.spec import (
    DEFAULT_PRESET,
    IMAGE_PRESETS,
    LAYER_DEFAULTS,
    PRESETS,
    build_model,
    count_parameters,
    default_layers,
)
from nnstudio.gui.model_builder import LayerStackModel, ModelBuilderPanel

IN, OUT = 4, 3


@pytest.fixture
def panel(qtbot) -> ModelBuilderPanel:
    widget = ModelBuilderPanel()
    widget.setObjectName("modelBuilderPanel")
    qtbot.addWidget(widget)
    widget.set_io(IN, OUT)
    widget.resize(340, 640)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def select(panel: ModelBuilderPanel, row: int) -> None:
    panel.layerList.setCurrentIndex(panel.model.index(row, 0))
    assert panel.current_row() == row


def click(qtbot, button: QAbstractButton) -> None:
    assert button.isEnabled(), f"{button.objectName()} is disabled"
    assert button.isVisible(), f"{button.objectName()} is hidden"
    if isinstance(button, QCheckBox):  # stretched across the form: click its box, not the empty middle
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))
    else:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def add_from_palette(qtbot, panel: ModelBuilderPanel, layer_type: str) -> None:
    index = panel.layerPalette.findData(layer_type)
    assert index >= 0, f"{layer_type} missing from the palette"
    panel.layerPalette.setCurrentIndex(index)
    click(qtbot, panel.addLayerButton)


def expected_params(layers, in_features=IN, n_outputs=OUT) -> int:
    return count_parameters(build_model(layers, in_features, n_outputs))


def cell(panel: ModelBuilderPanel, row: int, column: int, role=Qt.ItemDataRole.DisplayRole):
    return panel.model.index(row, column).data(role)


# ---- structure ----------------------------------------------------------------------------------


def test_children_are_found_by_the_names_tests_and_scripts_use(panel):
    for name, kind in [
        ("layerList", QWidget), ("addLayerButton", QAbstractButton), ("layerPalette", QComboBox),
        ("removeLayerButton", QAbstractButton), ("duplicateLayerButton", QAbstractButton),
        ("moveUpButton", QAbstractButton), ("moveDownButton", QAbstractButton), ("presetCombo", QComboBox),
        ("undoButton", QAbstractButton), ("redoButton", QAbstractButton), ("layerSettingsForm", QWidget),
        ("modelSummaryLabel", QLabel), ("outFeaturesSpin", QWidget), ("outFeaturesAutoCheck", QCheckBox),
        ("biasCheck", QCheckBox), ("dropoutSpin", QWidget), ("negativeSlopeSpin", QWidget),
        ("featuresSpin", QWidget), ("featuresAutoCheck", QCheckBox), ("epsSpin", QWidget), ("momentumSpin", QWidget),
    ]:
        child = panel.findChild(kind, name)
        assert child is not None, name
        assert getattr(panel, name) is child, name
    palette = [panel.layerPalette.itemData(i) for i in range(panel.layerPalette.count())]
    assert set(LAYER_DEFAULTS) <= set(palette)


def test_starts_on_the_default_model_with_live_totals(panel):
    assert panel.layers() == default_layers()
    assert panel.presetCombo.currentText() == DEFAULT_PRESET
    assert panel.is_valid()
    total = expected_params(default_layers())
    assert panel.summary().total_params == total
    assert panel.modelSummaryLabel.text() == f"5 layers · {total:,} parameters"
    assert [cell(panel, r, LayerStackModel.OUTPUT_COLUMN) for r in range(5)] == [
        "(N, 64)", "(N, 64)", "(N, 64)", "(N, 64)", f"(N, {OUT})"]
    assert cell(panel, 0, LayerStackModel.PARAMS_COLUMN) == f"{IN * 64 + 64:,}"
    assert cell(panel, 1, LayerStackModel.PARAMS_COLUMN) == "–"


def test_layers_returns_a_copy(panel):
    layers = panel.layers()
    layers[0]["out_features"] = 999
    layers.append({"type": "ReLU"})
    assert panel.layers() == default_layers()


# ---- edits through the buttons ------------------------------------------------------------------


def test_add_from_palette_inserts_after_the_selection_and_selects_it(qtbot, panel):
    select(panel, 1)
    with qtbot.waitSignal(panel.layers_changed):
        add_from_palette(qtbot, panel, "Dropout")
    layers = panel.layers()
    assert layers[2] == {"type": "Dropout", "p": 0.1}
    assert len(layers) == 6
    assert panel.current_row() == 2
    assert panel.layerSettingsBox.title() == "Layer 3 · Dropout"
    assert panel.dropoutSpin.isVisibleTo(panel) and not panel.outFeaturesSpin.isVisibleTo(panel)

    panel.layerList.selectionModel().clear()
    panel.layerList.setCurrentIndex(QModelIndex())
    add_from_palette(qtbot, panel, "Tanh")
    assert panel.layers()[-1] == {"type": "Tanh"}

    click(qtbot, panel.undoButton)
    click(qtbot, panel.undoButton)
    assert panel.layers() == default_layers()
    assert not panel.undoButton.isEnabled()
    click(qtbot, panel.redoButton)
    assert panel.layers()[2] == {"type": "Dropout", "p": 0.1}


def test_remove_and_duplicate(qtbot, panel):
    select(panel, 2)
    click(qtbot, panel.duplicateLayerButton)
    assert panel.layers()[3] == {"type": "Linear", "out_features": 64}
    assert panel.current_row() == 3
    assert len(panel.layers()) == 6
    assert panel.summary().total_params == expected_params(panel.layers())

    click(qtbot, panel.removeLayerButton)
    assert panel.layers() == default_layers()
    select(panel, 0)
    click(qtbot, panel.removeLayerButton)
    assert panel.layers() == default_layers()[1:]
    assert panel.current_row() == 0

    click(qtbot, panel.undoButton)
    assert panel.layers() == default_layers()
    assert panel.current_row() == 0, "undo selects the restored layer"
    assert panel.undo_stack.undoText() == "Remove layer 4 Linear"


def test_move_up_and_down_buttons(qtbot, panel):
    select(panel, 0)
    assert not panel.moveUpButton.isEnabled()
    click(qtbot, panel.moveDownButton)
    expected = default_layers()
    expected[0], expected[1] = expected[1], expected[0]
    assert panel.layers() == expected
    assert panel.current_row() == 1
    click(qtbot, panel.moveUpButton)
    assert panel.layers() == default_layers()
    select(panel, 4)
    assert not panel.moveDownButton.isEnabled()
    click(qtbot, panel.moveUpButton)
    assert panel.layers()[3]["out_features"] == "auto"
    assert panel.undo_stack.count() == 3


def test_buttons_disabled_without_a_selection(panel):
    panel.layerList.setCurrentIndex(QModelIndex())
    for button in (panel.removeLayerButton, panel.duplicateLayerButton, panel.moveUpButton, panel.moveDownButton):
        assert not button.isEnabled(), button.objectName()
    assert not panel.layerSettingsForm.isVisibleTo(panel)


def test_keyboard_shortcuts_on_the_list(qtbot, panel):
    select(panel, 2)
    panel.layerList.setFocus()
    qtbot.waitUntil(panel.layerList.hasFocus)
    qtbot.keyClick(panel.layerList, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(panel.layers()) == 6
    qtbot.keyClick(panel.layerList, Qt.Key.Key_Delete)
    assert panel.layers() == default_layers()


# ---- the settings editor ------------------------------------------------------------------------


def test_editing_a_spin_box_is_one_undo_step(qtbot, panel):
    select(panel, 0)
    before = panel.undo_stack.count()
    panel.outFeaturesSpin.setFocus()
    for _ in range(5):
        qtbot.keyClick(panel.outFeaturesSpin, Qt.Key.Key_Up)
    assert panel.layers()[0]["out_features"] == 69
    assert panel.undo_stack.count() == before + 1
    assert cell(panel, 0, LayerStackModel.OUTPUT_COLUMN) == "(N, 69)"
    assert cell(panel, 2, LayerStackModel.PARAMS_COLUMN) == f"{69 * 64 + 64:,}"
    assert panel.summary().total_params == expected_params(panel.layers())

    panel.outFeaturesSpin.setValue(32)
    assert panel.undo_stack.count() == before + 1
    click(qtbot, panel.undoButton)
    assert panel.layers() == default_layers()
    assert panel.outFeaturesSpin.value() == 64, "the editor follows undo"
    click(qtbot, panel.redoButton)
    assert panel.layers()[0]["out_features"] == 32


def test_editing_back_to_the_start_leaves_no_undo_step(panel):
    select(panel, 0)
    panel.outFeaturesSpin.setValue(65)
    panel.outFeaturesSpin.setValue(64)
    assert panel.undo_stack.count() == 0
    assert panel.layers() == default_layers()


def test_edits_of_different_layers_are_separate_steps(qtbot, panel):
    select(panel, 0)
    panel.outFeaturesSpin.setValue(10)
    select(panel, 2)
    panel.outFeaturesSpin.setValue(20)
    select(panel, 0)
    panel.outFeaturesSpin.setValue(30)
    assert panel.undo_stack.count() == 3
    panel.undo_stack.undo()
    assert [panel.layers()[i]["out_features"] for i in (0, 2)] == [10, 20]


def test_bias_checkbox(qtbot, panel):
    select(panel, 2)
    assert panel.biasCheck.isChecked()
    click(qtbot, panel.biasCheck)
    assert panel.layers()[2] == {"type": "Linear", "out_features": 64, "bias": False}
    assert cell(panel, 2, LayerStackModel.PARAMS_COLUMN) == f"{64 * 64:,}"
    assert "no bias" in cell(panel, 2, LayerStackModel.LAYER_COLUMN)
    assert panel.summary().total_params == expected_params(panel.layers())
    click(qtbot, panel.undoButton)
    assert panel.layers() == default_layers(), "undo removes the setting it added"
    assert panel.biasCheck.isChecked()


def test_auto_output_width_on_the_last_linear(qtbot, panel):
    select(panel, 0)
    assert not panel.outFeaturesAutoCheck.isVisibleTo(panel), "auto is offered on the last Linear only"
    select(panel, 4)
    assert panel.outFeaturesAutoCheck.isVisibleTo(panel)
    assert panel.outFeaturesAutoCheck.isChecked() and not panel.outFeaturesSpin.isEnabled()
    assert panel.outFeaturesSpin.value() == OUT
    click(qtbot, panel.outFeaturesAutoCheck)
    assert panel.layers()[4]["out_features"] == OUT
    assert panel.is_valid()
    with qtbot.waitSignal(panel.validity_changed) as blocker:
        panel.outFeaturesSpin.setValue(5)
    valid, reason = blocker.args
    assert not valid and reason.startswith("layer 5 Linear: the last Linear layer must output 3")
    click(qtbot, panel.outFeaturesAutoCheck)
    assert panel.layers()[4]["out_features"] == "auto" and panel.is_valid()


def test_dropout_leaky_relu_and_norm_settings(qtbot, panel):
    select(panel, 4)
    add_from_palette(qtbot, panel, "LeakyReLU")
    panel.negativeSlopeSpin.setValue(0.2)
    add_from_palette(qtbot, panel, "Dropout")
    panel.dropoutSpin.setValue(0.5)
    add_from_palette(qtbot, panel, "LayerNorm")
    panel.epsSpin.setFocus()
    qtbot.keyClick(panel.epsSpin, Qt.Key.Key_Up)  # eps steps by decades
    select(panel, 0)
    add_from_palette(qtbot, panel, "BatchNorm1d")
    panel.momentumSpin.setValue(0.3)
    layers = panel.layers()
    assert layers[1] == {"type": "BatchNorm1d", "num_features": "auto", "eps": 1e-5, "momentum": 0.3}
    assert layers[6] == {"type": "LeakyReLU", "negative_slope": 0.2}
    assert layers[7] == {"type": "Dropout", "p": 0.5}
    assert layers[8]["type"] == "LayerNorm" and layers[8]["eps"] == pytest.approx(1e-4)
    assert panel.is_valid()
    assert panel.summary().total_params == expected_params(layers)
    build_model(layers, IN, OUT)  # the spec the editors wrote is one the core builds


# ---- presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in PRESETS if n not in IMAGE_PRESETS])  # image ones: test_image_models.py
def test_preset_is_one_undoable_command(qtbot, panel, name):
    select(panel, 0)
    panel.outFeaturesSpin.setValue(16)
    edited = panel.layers()
    with qtbot.waitSignal(panel.layers_changed):
        panel.presetCombo.setCurrentIndex(panel.presetCombo.findText(name))
    assert panel.layers() == PRESETS[name]
    assert panel.presetCombo.currentText() == name
    assert panel.summary().total_params == expected_params(PRESETS[name])
    assert panel.is_valid()
    panel.undo_stack.undo()
    assert panel.layers() == edited
    assert panel.presetCombo.currentText() == "Custom"
    panel.undo_stack.redo()
    assert panel.layers() == PRESETS[name]


# ---- undo/redo round trip -----------------------------------------------------------------------


def test_undo_and_redo_every_kind_of_edit_restore_exact_layers(qtbot, panel):
    snapshots = [panel.layers()]

    def step(action):
        action()
        assert panel.layers() != snapshots[-1]
        snapshots.append(panel.layers())

    step(lambda: (select(panel, 1), add_from_palette(qtbot, panel, "BatchNorm1d")))
    step(lambda: (select(panel, 0), panel.outFeaturesSpin.setValue(128)))
    step(lambda: (select(panel, 3), click(qtbot, panel.duplicateLayerButton)))
    step(lambda: (select(panel, 2), click(qtbot, panel.moveUpButton)))
    step(lambda: (select(panel, 2), click(qtbot, panel.removeLayerButton)))
    step(lambda: panel.presetCombo.setCurrentIndex(panel.presetCombo.findText("MLP with BatchNorm and Dropout")))
    step(lambda: (select(panel, 3), panel.dropoutSpin.setValue(0.4)))
    step(lambda: panel.model.dropMimeData(panel.model.mimeData([panel.model.index(3, 0)]),
                                          Qt.DropAction.MoveAction, 0, 0, QModelIndex()))
    step(lambda: panel.set_layers([{"type": "Linear", "out_features": "auto", "bias": False}]))
    assert panel.undo_stack.count() == len(snapshots) - 1

    for expected in reversed(snapshots[:-1]):
        click(qtbot, panel.undoButton)
        assert panel.layers() == expected
        assert panel.summary().total_params == expected_params(expected)
    assert not panel.undoButton.isEnabled()
    for expected in snapshots[1:]:
        click(qtbot, panel.redoButton)
        assert panel.layers() == expected
    assert not panel.redoButton.isEnabled()


def test_layers_changed_on_every_edit_undo_and_redo(qtbot, panel):
    seen = []
    panel.layers_changed.connect(lambda: seen.append(panel.layers()))
    select(panel, 0)
    click(qtbot, panel.duplicateLayerButton)
    panel.undo_stack.undo()
    panel.undo_stack.redo()
    assert len(seen) == 3
    assert seen[1] == default_layers()


def test_set_layers_without_undo_clears_history(qtbot, panel):
    select(panel, 0)
    click(qtbot, panel.duplicateLayerButton)
    loaded = [{"type": "Linear", "out_features": 8}, {"type": "GELU"}, {"type": "Linear", "out_features": "auto"}]
    with qtbot.waitSignal(panel.layers_changed):
        panel.set_layers(loaded, undoable=False)
    assert panel.layers() == loaded
    assert panel.undo_stack.count() == 0 and not panel.undoButton.isEnabled()
    loaded[0]["out_features"] = 1
    assert panel.layers()[0]["out_features"] == 8, "set_layers copies its argument"
    panel.set_layers(default_layers())
    assert panel.undo_stack.count() == 1
    panel.undo_stack.undo()
    assert panel.layers()[0]["out_features"] == 8


# ---- live parameter counts ----------------------------------------------------------------------


@pytest.mark.parametrize("in_features,n_outputs", [(4, 3), (13, 1), (1, 10)])
@pytest.mark.parametrize("name", [n for n in PRESETS if n not in IMAGE_PRESETS])
def test_live_counts_match_the_built_module(panel, name, in_features, n_outputs):
    panel.set_io(in_features, n_outputs)
    panel.set_layers(PRESETS[name])
    module = build_model(panel.layers(), in_features, n_outputs)
    assert panel.summary().total_params == sum(p.numel() for p in module.parameters())
    per_layer = [sum(p.numel() for p in layer.parameters()) for layer in module.layers]
    shown = [cell(panel, r, LayerStackModel.PARAMS_COLUMN, LayerStackModel.ParamsRole) for r in range(len(per_layer))]
    assert shown == per_layer
    assert f"{sum(per_layer):,} parameters" in panel.modelSummaryLabel.text()


# ---- invalid stacks -----------------------------------------------------------------------------


def test_batchnorm_width_mismatch_is_marked_at_the_layer(qtbot, panel):
    panel.set_layers(PRESETS["MLP with BatchNorm and Dropout"])
    select(panel, 1)
    assert panel.featuresAutoCheck.isChecked() and panel.featuresSpin.value() == 128
    with qtbot.waitSignal(panel.validity_changed) as blocker:
        click(qtbot, panel.featuresAutoCheck)  # explicit 128: still valid, no signal yet
        panel.featuresSpin.setValue(32)
    valid, reason = blocker.args
    assert valid is False
    assert reason == "layer 2 BatchNorm1d: expects 32 features, gets 128"
    assert not panel.is_valid()
    index = panel.model.index(1, LayerStackModel.LAYER_COLUMN)
    assert index.data(LayerStackModel.ErrorRole) == reason
    assert index.data(Qt.ItemDataRole.ToolTipRole) == reason
    assert index.data(Qt.ItemDataRole.ForegroundRole).color().name() == "#d62728"
    assert index.data(Qt.ItemDataRole.DecorationRole) is not None
    assert panel.model.index(0, 1).data(LayerStackModel.ErrorRole) is None
    assert panel.model.index(0, 1).data(Qt.ItemDataRole.ForegroundRole) is None
    assert "expects 32 features, gets 128" in panel.modelSummaryLabel.text()

    with qtbot.waitSignal(panel.validity_changed) as blocker:
        panel.undo_stack.undo()
    assert blocker.args == [True, ""]
    assert panel.layers() == PRESETS["MLP with BatchNorm and Dropout"]


def test_removing_every_linear_layer_invalidates(qtbot, panel):
    signals = []
    panel.validity_changed.connect(lambda ok, reason: signals.append((ok, reason)))
    for row in (4, 2, 0):
        select(panel, row)
        click(qtbot, panel.removeLayerButton)
    assert panel.layers() == [{"type": "ReLU"}, {"type": "ReLU"}]
    assert not panel.is_valid()
    assert signals[-1] == (False, "the model needs at least one Linear layer to produce outputs")
    assert "Linear" in panel.modelSummaryLabel.text()
    click(qtbot, panel.undoButton)
    assert signals[-1] == (False, 'layer 1 Linear: the last Linear layer must output 3 value(s) for this task, '
                                  'not 64; set out_features to "auto"')
    click(qtbot, panel.undoButton)
    click(qtbot, panel.undoButton)
    assert signals[-1] == (True, "")
    assert panel.layers() == default_layers()


def test_wrong_last_width_and_unknown_settings_name_the_layer(qtbot, panel):
    with qtbot.waitSignal(panel.validity_changed) as blocker:
        panel.set_layers([{"type": "Linear", "out_features": 8}, {"type": "Conv3d"}, {"type": "Linear"}])
    assert blocker.args[0] is False
    assert blocker.args[1].startswith("layer 2: unknown type 'Conv3d'")
    assert cell(panel, 1, 1, LayerStackModel.ErrorRole) == blocker.args[1]
    last_error = cell(panel, 2, 1, LayerStackModel.ErrorRole)
    assert last_error.startswith("layer 3 Linear: the last Linear layer must output 3")
    select(panel, 1)
    click(qtbot, panel.removeLayerButton)  # the rest of the stack still edits
    assert not panel.is_valid()


def test_without_a_dataset_shapes_are_unknown_but_editing_works(qtbot, panel):
    with qtbot.waitSignal(panel.validity_changed) as blocker:
        panel.set_io(None, None)
    assert blocker.args[0] is False and "dataset" in blocker.args[1]
    assert panel.summary().errors == []
    assert cell(panel, 0, LayerStackModel.PARAMS_COLUMN) == "?"
    assert cell(panel, 4, LayerStackModel.OUTPUT_COLUMN) == "?"
    assert cell(panel, 4, LayerStackModel.PARAMS_COLUMN) == "?"
    assert cell(panel, 2, LayerStackModel.PARAMS_COLUMN) == f"{64 * 64 + 64:,}"
    assert "? parameters" in panel.modelSummaryLabel.text()
    select(panel, 4)
    click(qtbot, panel.outFeaturesAutoCheck)  # an explicit width is no error while the task is unknown
    assert panel.summary().errors == []
    add_from_palette(qtbot, panel, "Sigmoid")
    assert len(panel.layers()) == 6
    with qtbot.waitSignal(panel.validity_changed) as blocker:
        panel.set_io(IN, panel.layers()[4]["out_features"])
    assert blocker.args == [True, ""]


def test_empty_stack(qtbot, panel):
    panel.set_layers([])
    assert not panel.is_valid()
    assert panel.invalid_reason().startswith("the model has no layers")
    assert not panel.removeLayerButton.isEnabled()
    add_from_palette(qtbot, panel, "Linear")
    assert panel.layers() == [{"type": "Linear", "out_features": 64, "bias": True}]
    select(panel, 0)
    click(qtbot, panel.outFeaturesAutoCheck)
    assert panel.is_valid()


# ---- the Qt model -------------------------------------------------------------------------------


def test_layer_stack_model_passes_qtmodeltester(qtmodeltester):
    model = LayerStackModel(PRESETS["MLP with BatchNorm and Dropout"])
    model.set_io(IN, OUT)
    qtmodeltester.check(model, force_py=True)
    model.insert_layer(2, {"type": "GELU"})
    model.remove_layer(0)
    model.move_layer(0, 5)
    model.set_setting(1, "out_features", 7)
    model.replace_layers(PRESETS["Logistic / linear regression"])
    model.undo_stack.undo()
    model.set_io(None, None)
    model.reset_layers([])
    qtmodeltester.check(model, force_py=True)


def test_drag_and_drop_reorders_through_the_undo_stack(qtbot, panel):
    model = panel.model
    assert model.supportedDropActions() == Qt.DropAction.MoveAction
    assert model.flags(QModelIndex()) & Qt.ItemFlag.ItemIsDropEnabled
    assert model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsDragEnabled
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsDropEnabled, "drops land between rows"

    data = model.mimeData([model.index(4, c) for c in range(model.columnCount())])
    assert model.canDropMimeData(data, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    assert not model.canDropMimeData(data, Qt.DropAction.CopyAction, 0, 0, QModelIndex())
    with qtbot.waitSignal(panel.layers_changed):
        assert model.dropMimeData(data, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    expected = default_layers()
    expected.insert(0, expected.pop(4))
    assert panel.layers() == expected
    assert panel.current_row() == 0
    assert not panel.is_valid(), "auto output on a Linear that is no longer last"

    data = model.mimeData([model.index(0, 0)])
    assert model.dropMimeData(data, Qt.DropAction.MoveAction, -1, -1, QModelIndex()), "-1: drop at the end"
    assert panel.layers() == default_layers()
    assert panel.undo_stack.count() == 2
    panel.undo_stack.undo()
    assert panel.layers() == expected
    panel.undo_stack.undo()
    assert panel.layers() == default_layers()


def test_move_rows_api_and_rejected_drops(panel):
    model = panel.model
    assert model.moveRows(QModelIndex(), 1, 1, QModelIndex(), 4)  # before row 4 -> ends at index 3
    assert [layer["type"] for layer in panel.layers()] == ["Linear", "Linear", "ReLU", "ReLU", "Linear"]
    assert panel.layers()[2] == {"type": "ReLU"}
    assert not model.moveRows(QModelIndex(), 1, 1, QModelIndex(), 1), "onto itself"
    assert not model.moveRows(QModelIndex(), 1, 1, QModelIndex(), 2), "just after itself"
    assert not model.moveRows(QModelIndex(), 0, 2, QModelIndex(), 4), "one row at a time"
    assert not model.moveRows(QModelIndex(), 9, 1, QModelIndex(), 0)
    foreign = QMimeData()
    foreign.setText("Linear")
    assert not model.canDropMimeData(foreign, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    assert not model.dropMimeData(foreign, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    garbage = QMimeData()
    garbage.setData(model.mimeTypes()[0], b"not json")
    assert not model.dropMimeData(garbage, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    assert panel.undo_stack.count() == 1
    model.undo_stack.undo()
    assert panel.layers() == default_layers()


def test_model_roles(panel):
    model = panel.model
    names = {model.headerData(c, Qt.Orientation.Horizontal): c for c in range(model.columnCount())}
    assert names == {"#": LayerStackModel.NUMBER_COLUMN, "Layer": LayerStackModel.LAYER_COLUMN,
                     "Output": LayerStackModel.OUTPUT_COLUMN, "Params": LayerStackModel.PARAMS_COLUMN}
    assert model.index(3, LayerStackModel.NUMBER_COLUMN).data() == "4"
    header = panel.layerList.header()
    assert header.logicalIndex(0) == LayerStackModel.NUMBER_COLUMN, "the view shows # first"
    assert model.index(0, 1).data(LayerStackModel.LayerRole) == default_layers()[0]
    assert model.index(0, 1).data(LayerStackModel.OutFeaturesRole) == 64
    tooltip = model.index(0, 1).data(Qt.ItemDataRole.ToolTipRole)
    assert "out_features = 64" in tooltip and "bias = true" in tooltip
    layer = model.index(0, 1).data(LayerStackModel.LayerRole)
    layer["out_features"] = 1
    assert panel.layers() == default_layers()


def test_no_layer_type_leaks_shared_defaults(qtbot, panel):
    """A layer added from the palette is a copy: editing it never changes LAYER_DEFAULTS."""
    defaults = copy.deepcopy(LAYER_DEFAULTS)
    select(panel, 4)
    add_from_palette(qtbot, panel, "BatchNorm1d")
    click(qtbot, panel.featuresAutoCheck)
    panel.featuresSpin.setValue(9)
    assert LAYER_DEFAULTS == defaults
