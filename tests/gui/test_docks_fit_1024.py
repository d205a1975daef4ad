"""#20.5: at 1024×768 no dock scrolls sideways (fresh start, and a layout saved at 1366 reopened at 1024), and the
plots after a restore show all of the run (the x range covers its last step and epoch, the right axes inside)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from guiwindow import load
from test_window_fit import _reopened_at_1024, _window

from nnstudio.gui.dock_layout import MIN_PLOT_WIDTH, DockScrollArea
from nnstudio.resources import sample_dataset


def _docks(window):
    return [window.datasetDock, window.modelDock, window.runsDock, window.trainingDock, window.codeView]


def _assert_no_dock_scrolls_sideways(qtbot, window) -> None:
    for dock in _docks(window):
        dock.raise_()  # a tabbed dock is laid out once it is shown
        qtbot.waitUntil(dock.widget().isVisible, timeout=2000)
        QApplication.processEvents()
        scroll = dock.widget()
        assert isinstance(scroll, DockScrollArea)
        panel = scroll.widget()
        least = max(panel.minimumSizeHint().width(), panel.minimumWidth())
        assert least <= scroll.viewport().width(), (dock.objectName(), least, scroll.viewport().width())
        assert scroll.horizontalScrollBar().maximum() == 0, dock.objectName()
    window.datasetDock.raise_()
    window.trainingDock.raise_()
    assert window.centralWidget().width() >= MIN_PLOT_WIDTH


def _train(qtbot, window, epochs: int) -> None:
    window.trainingPanel.epochsSpin.setValue(epochs)
    with qtbot.waitSignal(window.training_finished, timeout=60000):
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)


def test_fresh_start_at_1024_fits_every_dock_with_a_dataset_loaded(qtbot, tmp_path, monkeypatch):
    window = _window(qtbot, tmp_path, monkeypatch, 1024, 768)
    try:
        load(qtbot, window, sample_dataset())  # the penguins: long target, task and missing-value texts
        _assert_no_dock_scrolls_sideways(qtbot, window)
        summary = window.datasetPanel.summaryLabel
        assert summary.mapTo(window, summary.rect().topRight()).x() <= window.datasetDock.geometry().right()
    finally:
        window.shutdown()


def test_a_layout_saved_at_1366_reopened_at_1024_fits_and_shows_the_whole_run(qtbot, tmp_path, monkeypatch):
    small = _reopened_at_1024(qtbot, tmp_path, monkeypatch)
    try:
        assert small.geometry().width() <= 1024
        load(qtbot, small, sample_dataset("flowers.csv"))
        _train(qtbot, small, epochs=2)
        _assert_no_dock_scrolls_sideways(qtbot, small)
        small.centralTabs.setCurrentIndex(0)
        qtbot.waitUntil(small.lossPlot.isVisible, timeout=2000)
        run = small.last_run
        assert small.lossPlot.getPlotItem().vb.viewRange()[0][1] >= run.trainer.global_step
        assert small.metricsPlot.getPlotItem().vb.viewRange()[0][1] >= run.trainer.epoch
        plot = small.metricsPlot
        for axis in [plot.getPlotItem().getAxis("right"), *(a for _, a, _ in plot._extra.values())]:
            right = plot.mapFromScene(axis.mapToScene(axis.boundingRect().topRight())).x()
            assert 0 < right <= plot.width(), (axis.labelText, right, plot.width())  # not cut off at the right
    finally:
        small.shutdown()
