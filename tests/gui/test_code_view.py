"""The code view dock and File > Export in the real window: updates, hover, marks while training, exports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QFileDialog

from nnstudio.core.model.checkpoint import load_checkpoint

from guiwindow import load


@pytest.fixture
def window(window):
    window.codeView.raise_()
    return window


def test_code_view_follows_data_layers_and_settings(qtbot, window, flowers_csv):
    panel = window.codeViewPanel
    assert window.codeView.objectName() == "codeView" and panel.codeEdit.isReadOnly()
    qtbot.waitUntil(lambda: "class Net(nn.Module):" in panel.text())
    load(qtbot, window, flowers_csv)
    qtbot.waitUntil(lambda: "TARGET = 'species'" in panel.text())
    assert "nn.CrossEntropyLoss()" in panel.text()
    window.modelBuilder.presetCombo.setCurrentText("MLP with BatchNorm and Dropout")
    qtbot.waitUntil(lambda: "self.bn1 = nn.BatchNorm1d(128)" in panel.text())
    assert "self.dropout2 = nn.Dropout(p=0.2)" in panel.text()
    window.trainingPanel.epochsSpin.setValue(7)
    qtbot.waitUntil(lambda: "EPOCHS = 7" in panel.text())
    compile(panel.text(), "train.py", "exec")
    with qtbot.waitSignal(panel.copied):
        qtbot.mouseClick(panel.copyButton, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == panel.text()


def test_hovering_a_layer_marks_its_line(qtbot, window):
    panel = window.codeViewPanel
    qtbot.waitUntil(lambda: panel.code is not None)
    view = window.modelBuilder.layerList
    index = view.model().index(2, 0)  # the second Linear of the default MLP: fc2
    with qtbot.waitSignal(window.modelBuilder.layer_hovered) as blocker:
        pos = QPointF(view.visualRect(index).center())  # a real move event: QTest's mouseMove only moves the cursor
        QGuiApplication.sendEvent(view.viewport(), QMouseEvent(QEvent.Type.MouseMove, pos, view.viewport().mapToGlobal(pos),
                                                               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                                               Qt.KeyboardModifier.NoModifier))
    assert blocker.args == [2]
    marks = panel.marked_lines()
    assert panel.text().splitlines()[marks["layer"][0]].strip().startswith("self.fc2 = nn.Linear(64, 64)")
    QGuiApplication.sendEvent(view.viewport(), QEvent(QEvent.Type.Leave))
    assert "layer" not in panel.marked_lines()


def test_training_marks_where_the_plotted_numbers_come_from(qtbot, window, flowers_csv):
    panel = window.codeViewPanel
    load(qtbot, window, flowers_csv)
    window.trainingPanel.epochsSpin.setValue(500)
    qtbot.waitUntil(window.trainingPanel.trainButton.isEnabled)
    with qtbot.waitSignal(window.controller.epoch_finished, timeout=30000):
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    assert window.controller.is_running()
    lines = panel.text().splitlines()
    marked = [lines[n] for n in panel.marked_lines().get("plot", [])]
    assert any('add_scalar("loss/train_step"' in l for l in marked)
    assert any("evaluate(model, loss_fn, val_set" in l for l in marked)
    assert "The plots show" in panel.statusLabel.text()
    window.actionStop.trigger()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=30000)
    assert "plot" not in panel.marked_lines()


def test_export_script_and_model_from_the_window(qtbot, window, flowers_csv, tmp_path, monkeypatch):
    load(qtbot, window, flowers_csv)
    window.trainingPanel.epochsSpin.setValue(2)
    qtbot.waitUntil(window.trainingPanel.trainButton.isEnabled)
    with qtbot.waitSignal(window.training_finished, timeout=60000):
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    script = tmp_path / "train.py"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(script), ""))
    window.actionExportScript.trigger()
    assert "nnstudio" not in [l for l in script.read_text().splitlines() if l.startswith(("import", "from"))]
    proc = subprocess.run([sys.executable, "-I", str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = load_checkpoint(tmp_path / "train.pt")  # beside the script
    assert ckpt.preprocessor.target == "species"
    target = tmp_path / "m.ts"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "TorchScript (*.pt)"))
    window.actionExportModel.trigger()
    side = json.loads((tmp_path / "m.ts.json").read_text())
    assert side["check"]["ok"] and side["classes"] == window.last_run.data.preprocessor.classes


def test_export_without_a_model_says_what_to_do(qtbot, window):
    with qtbot.waitSignal(window.error_shown) as blocker:
        window.actionExportModel.trigger()
    assert "Train a model or open a checkpoint" in blocker.args[0]
    with qtbot.waitSignal(window.error_shown) as blocker:
        window.actionExportScript.trigger()
    assert "Open a dataset file first" in blocker.args[0]
