"""#20.5: a layout saved at 1366 reopened at 1024 is fitted (plots keep their width, docks within the window)."""

from __future__ import annotations

from test_window_fit import _reopened_at_1024

from nnstudio.gui import dock_layout
from nnstudio.gui.dock_layout import MIN_PLOT_WIDTH


def test_a_wide_layout_from_1366_fits_at_1024(qtbot, tmp_path, monkeypatch):
    small = _reopened_at_1024(qtbot, tmp_path, monkeypatch)
    try:
        assert small.width() <= 1024
        qtbot.waitUntil(lambda: small.centralWidget().width() >= MIN_PLOT_WIDTH)
        assert small.lossPlot.width() >= MIN_PLOT_WIDTH and small.metricsPlot.width() >= MIN_PLOT_WIDTH
        assert small.datasetDock.width() + small.trainingDock.width() + MIN_PLOT_WIDTH <= small.width()
        assert not small.trainingPanel.trainButton.visibleRegion().isEmpty()
    finally:
        small.shutdown()
    assert dock_layout.MIN_PLOT_WIDTH == MIN_PLOT_WIDTH
