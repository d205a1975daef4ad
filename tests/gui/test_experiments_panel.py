"""The Experiments tab drives a real sweep on the loaded iris table in a worker thread: live trials table,
metric-vs-trial plot with the best so far, Stop, and Apply best into the builder and training panel."""

from __future__ import annotations

import itertools

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
