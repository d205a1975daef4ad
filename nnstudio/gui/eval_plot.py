"""A plot inside a scrolling tab: the wheel scrolls the tab, Ctrl+wheel zooms, a double-click or the Reset button
puts the view back, and a plot of [0, 1] quantities (rates, precision, recall) never pans or zooms outside them."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QScrollArea

UNIT_PADDING = 0.02


class EvalPlot(pg.PlotWidget):
    def __init__(self, unit_square: bool = False, parent=None):
        super().__init__(parent, background="w")
        self.unit_square = unit_square
        if unit_square:
            self.getViewBox().setLimits(xMin=-UNIT_PADDING, xMax=1 + UNIT_PADDING,
                                        yMin=-UNIT_PADDING, yMax=1 + UNIT_PADDING)
        self.setToolTip("Ctrl+wheel zooms, drag pans, double-click resets")

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)
            return
        area = self.parentWidget()  # the tab scrolls, as everywhere else in it: a view does not pass a wheel on
        while area is not None and not isinstance(area, QScrollArea):
            area = area.parentWidget()
        if area is None:
            event.ignore()
            return
        bar = area.horizontalScrollBar() if event.angleDelta().x() and not event.angleDelta().y() \
            else area.verticalScrollBar()
        QApplication.sendEvent(bar, event)

    def mouseDoubleClickEvent(self, event) -> None:
        self.reset_view()
        event.accept()

    def reset_view(self) -> None:
        if self.unit_square:
            self.setXRange(0, 1, padding=UNIT_PADDING)
            self.setYRange(0, 1, padding=UNIT_PADDING)
        else:
            self.getPlotItem().enableAutoRange()
