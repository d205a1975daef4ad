"""#20.8: on the evaluation tab the wheel scrolls, Ctrl+wheel zooms, a reset is at hand, and [0, 1] axes stay in it."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea

from nnstudio.gui.evaluation_panel import EvaluationPanel


def _wheel(widget, delta, modifiers=Qt.KeyboardModifier.NoModifier):
    target = widget.viewport()
    pos = QPointF(target.width() / 2, target.height() / 2)
    event = QWheelEvent(pos, QPointF(target.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, delta),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(target, event)


def _range(plot):
    (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
    return x0, x1, y0, y1


def test_wheel_scrolls_the_tab_ctrl_zooms_within_unit_axes_and_reset_restores(qtbot):
    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    panel.resize(760, 420)
    panel.show()
    panel.pages.setCurrentIndex(1)
    panel.binaryBox.setVisible(True)
    panel.prCurve.setData([0.0, 0.5, 1.0], [1.0, 0.8, 0.4])
    qtbot.waitExposed(panel)
    scroll = panel.findChild(QScrollArea)
    bar = scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    scroll.ensureWidgetVisible(panel.prPlot)
    before_scroll, before = bar.value(), _range(panel.prPlot)
    _wheel(panel.prPlot, 120 if before_scroll == bar.maximum() else -120)
    assert _range(panel.prPlot) == before  # no zoom
    assert bar.value() != before_scroll  # the tab scrolled
    for _ in range(6):
        _wheel(panel.prPlot, -120, Qt.KeyboardModifier.ControlModifier)  # zoom out as far as it goes
    x0, x1, y0, y1 = _range(panel.prPlot)
    assert -0.021 <= x0 and x1 <= 1.021 and -0.021 <= y0 and y1 <= 1.021, (x0, x1, y0, y1)
    for _ in range(3):
        _wheel(panel.prPlot, 120, Qt.KeyboardModifier.ControlModifier)
    zoomed = _range(panel.prPlot)
    assert zoomed[1] - zoomed[0] < 0.9
    panel.prResetView.click()
    x0, x1, y0, y1 = _range(panel.prPlot)
    assert abs(x0 + 0.02) < 1e-6 and abs(x1 - 1.02) < 1e-6 and abs(y0 + 0.02) < 1e-6 and abs(y1 - 1.02) < 1e-6
    assert panel.rocResetView.isVisibleTo(panel)
