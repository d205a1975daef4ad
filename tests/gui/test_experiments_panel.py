"""The Experiments tab drives a real sweep on the loaded iris table in a worker thread: live trials table,
metric-vs-trial plot with the best so far, Stop, and Apply best into the builder and training panel."""

from __future__ import annotations

import itertools
from pathlib import Path

import optuna
import pytest
from PySide6.QtCore import Qt

from nnstudio.resources import sample_dataset
from tests.gui.guiwindow import load


def _open(qtbot, window):
    load(qtbot, window, sample_dataset("iris.csv"))
    window.trainingPanel.epochsSpin.setValue(2)
    window.centralTabs.setCurrentWidget(window.experimentsTab)
    panel = window.experimentsPanel
    assert panel.objectName() == "experimentsPanel"
    return panel


def test_a_sweep_runs_in_the_background_and_applies_its_best(qtbot, window):
    panel = _open(qtbot, window)
    keys = [panel.spaceTable.item(r, 0).text() for r in range(panel.spaceTable.rowCount())]
    assert "training.optimizer.lr" in keys and "model.layers.0.out_features" in keys
    panel.trialsSpin.setValue(3)
    with qtbot.waitSignal(panel.sweep_finished, timeout=120_000) as done:
        qtbot.mouseClick(panel.startButton, Qt.MouseButton.LeftButton)
        assert panel.running and not panel.startButton.isEnabled()
    assert done.args == [""]
    model = panel.trialsModel
    assert model.rowCount() == 3
    st = optuna.load_study(storage=panel.sweep.storage_url(), study_name=panel.sweep.study)
    assert sorted(t.number for t in st.trials) == sorted(model.rows[i]["number"] for i in range(3))
    _, ys = panel.valueCurve.getData()
    values = [r["value"] for r in model.rows if r["value"] is not None]
    assert sorted(ys.tolist()) == sorted(values)
    _, by = panel.bestCurve.getData()
    assert by[-1] == max(values) and all(a <= b for a, b in itertools.pairwise(by))
    model.sort(2, Qt.SortOrder.DescendingOrder)
    shown = [model.data(model.index(r, 2), Qt.ItemDataRole.UserRole) for r in range(3)]
    assert [v for v in shown if v is not None] == sorted(values, reverse=True)
    finished = [r for r in model.rows if r["value"] is not None]
    assert len(panel.parallel_lines) == len(finished)
    assert panel.parallel_lines[0].getData()[1].min() >= 0 and panel.parallel_lines[0].getData()[1].max() <= 1
    assert set(panel.importances()) == {"training.optimizer.lr", "model.layers.0.out_features"}
    assert panel.importanceLabel.text().startswith("importance: ")
    panel.trialsView.selectRow(0)
    with qtbot.waitSignal(panel.model_opened) as opened:
        qtbot.mouseClick(panel.openTrialButton, Qt.MouseButton.LeftButton)
    assert opened.args[0] == str(Path(model.rows[0]["run_dir"]) / "best.pt") and Path(opened.args[0]).is_file()
    best = panel.best()
    qtbot.mouseClick(panel.applyBestButton, Qt.MouseButton.LeftButton)
    assert window.trainingPanel.train_config().lr == pytest.approx(best["params"]["training.optimizer.lr"], rel=1e-6)
    assert window.modelBuilder.layers()[0]["out_features"] == best["params"]["model.layers.0.out_features"]


def test_stop_ends_the_sweep_early(qtbot, window):
    panel = _open(qtbot, window)
    panel.trialsSpin.setValue(50)
    with qtbot.waitSignal(panel.sweep_finished, timeout=120_000):
        qtbot.mouseClick(panel.startButton, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.trialsModel.rowCount() >= 1, timeout=60_000)
        qtbot.mouseClick(panel.stopButton, Qt.MouseButton.LeftButton)
    assert panel.trialsModel.rowCount() < 50 and panel.startButton.isEnabled() and not panel.running


def test_cross_validation_from_the_tab_shows_mean_and_std(qtbot, window):
    panel = _open(qtbot, window)
    panel.foldsSpin.setValue(3)
    with qtbot.waitSignal(panel.cv_finished, timeout=120_000) as done:
        qtbot.mouseClick(panel.cvButton, Qt.MouseButton.LeftButton)
    assert done.args == [""]
    result = panel.cv_result
    assert len(result["folds"]) == 3
    accs = [f["metrics"]["val_accuracy"] for f in result["folds"]]
    assert result["mean"]["val_accuracy"] == pytest.approx(sum(accs) / 3)
    assert panel.cvLabel.text().startswith("3 folds: ") and "val_accuracy" in panel.cvLabel.text()
    assert "±" in panel.cvLabel.text()


def test_the_tab_does_not_widen_a_1024_window(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QRect, QSettings
    from PySide6.QtWidgets import QApplication

    from nnstudio.gui import dock_layout
    from nnstudio.gui.main_window import MainWindow

    monkeypatch.setattr(dock_layout, "available_geometry", lambda window: QRect(0, 0, 1024, 768))
    w = MainWindow(settings=QSettings(str(tmp_path / "fit.ini"), QSettings.Format.IniFormat), logdir=tmp_path / "r")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    try:
        w.centralTabs.setCurrentWidget(w.experimentsTab)
        QApplication.processEvents()
        assert w.experimentsPanel.isVisible() and w.width() <= 1024
    finally:
        w.shutdown()
