"""#20.10: Restore settings of another task's run clears the previous task's curves from the plots."""

from __future__ import annotations

from test_runs_panel import _select, earlier_logdir, window  # noqa: F401 - the fixtures, reused

from PySide6.QtCore import Qt


def _points(item):
    if item is None:
        return 0
    xs, _ = item.getData()
    return 0 if xs is None else len(xs)


def test_restoring_a_regression_run_clears_the_classification_curves(qtbot, window):  # noqa: F811
    panel = window.runsPanel
    _select(panel, "flowers-fast")
    with qtbot.waitSignal(window.runs.overlaid, timeout=20000):
        qtbot.mouseClick(panel.overlayButton, Qt.MouseButton.LeftButton)
    assert _points(window.lossPlot.step_curve) and _points(window.metricsPlot.metric_curve("accuracy"))
    _select(panel, "houses")
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        qtbot.mouseClick(panel.restoreButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.datasetPanel.target() == "price")
    assert _points(window.lossPlot.step_curve) == 0 and _points(window.lossPlot.train_curve) == 0
    assert _points(window.metricsPlot.metric_curve("accuracy")) == 0
    assert window.lossPlot.earlier_run_names() == [] and window.metricsPlot.earlier_run_names() == []
