"""Training health and the learning-rate finder in the real window, headless."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from nnstudio.gui.training_worker import TrainingController
from nnstudio.resources import sample_dataset

from guiwindow import load


def train(qtbot, window, epochs, timeout=90000):
    window.trainingPanel.epochsSpin.setValue(epochs)
    with qtbot.waitSignal(window.training_finished, timeout=timeout) as blocker:
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_find_learning_rate_plots_proposes_and_applies(qtbot, window):
    load(qtbot, window, sample_dataset("flowers.csv"))
    window.trainingPanel.learningRateSpin.setValue(1e-5)
    assert window.actionFindLR.isEnabled()
    window.actionFindLR.trigger()
    dialog = window.lrFindDialog
    assert isinstance(dialog.controller, TrainingController)  # the training worker's QThread bridge
    with qtbot.waitSignal(dialog.finished_test, timeout=60000) as blocker:
        pass
    payload = blocker.args[0]
    assert dialog.isVisible() and not dialog.isModal()
    assert dialog.lrPlot.getPlotItem().ctrl.logXCheck.isChecked()  # loss against lr on a log axis
    xs, ys = dialog.smoothCurve.getData()  # log mode: x is drawn as log10(lr)
    np.testing.assert_allclose(xs, np.log10(payload["lrs"]), rtol=1e-9)
    np.testing.assert_allclose(ys, payload["smoothed"])
    assert len(xs) >= 50
    lr = dialog.suggestion
    assert lr is not None and 1e-5 < lr < 1
    assert f"{lr:.3g}" in dialog.proposalLabel.text() and "Why:" in dialog.proposalLabel.text()
    assert dialog.applyButton.isEnabled()
    qtbot.mouseClick(dialog.applyButton, Qt.MouseButton.LeftButton)
    assert window.trainingPanel.learningRateSpin.value() == pytest.approx(lr, rel=1e-6)
    assert window.trainingPanel.train_config().lr == pytest.approx(lr, rel=1e-6)
    qtbot.waitUntil(lambda: not dialog.controller.is_running(), timeout=10000)


def test_gradient_norm_is_plotted_per_epoch(qtbot, window):
    load(qtbot, window, sample_dataset("flowers.csv"))
    train(qtbot, window, 3)
    xs, ys = window.metricsPlot.grad_norm_curve.getData()
    assert list(xs) == [1, 2, 3]
    assert all(math.isfinite(v) and v > 0 for v in ys)


def test_overfitting_warning_names_the_best_epoch(qtbot, window, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = rng.normal(size=120)  # noise: whatever the net learns of the training rows is overfitting
    df = pl.DataFrame({**{f"x{i}": X[:, i] for i in range(8)}, "y": y})
    path = tmp_path / "noise.csv"
    df.write_csv(path)
    load(qtbot, window, path)
    window.modelBuilder.set_layers([{"type": "Linear", "out_features": 256}, {"type": "ReLU"},
                                    {"type": "Linear", "out_features": "auto"}], undoable=False)
    window.trainingPanel.batchSizeSpin.setValue(8)
    window.trainingPanel.learningRateSpin.setValue(0.01)
    with qtbot.waitSignal(window.healthNotifier.shown, timeout=90000) as blocker:
        window.trainingPanel.epochsSpin.setValue(15)
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    warning = blocker.args[0]
    notice = window.findChild(QMessageBox, "healthNotice")
    assert notice is not None and notice.isVisible() and not notice.isModal()
    assert f"epoch {warning.best_epoch}" in notice.text()
    assert f"epoch {warning.best_epoch}" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=90000)
    assert window.healthNotifier.label.isVisible()  # still shown after the run's own summary
    assert f"best epoch {warning.best_epoch}" in window.healthNotifier.label.text()
    window.trainingPanel.epochsSpin.setValue(1)
    window.actionTrain.trigger()
    assert not window.healthNotifier.label.isVisible()  # a new run starts without the old warning
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=90000)
