"""Live training plots: step loss and per-epoch metrics, with earlier runs faded behind.

Follows pyqtgraph's ``examples/scrollingPlots.py``: data goes into preallocated buffers
that double when full, and a timer pushes ``buffer[:n]`` to the curves, independently of
how fast data arrives. Curves clip to the view and downsample with the 'peak' method so
a million steps stay interactive. Non-finite values (a diverging loss) never break a plot:
the curve shows a gap and a red marker line spans the non-finite stretch at the last
finite value.

pyqtgraph is not imported with this module: `LossPlot` and `MetricsPlot` are light widgets that
import it off the GUI thread once they are shown and then create their pyqtgraph widget
(`nnstudio.gui.plot_widgets`), so the window appears without waiting for it.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from nnstudio.gui.curve_data import (  # noqa: F401  (re-exported: what the plots draw)
    FROZEN_MAX_BLOCKS, MAX_EARLIER_RUNS, PALETTE, RECENT_POINTS, CurveBuffer, PeakPyramid, check_smoothing, smooth_ema)

if TYPE_CHECKING:
    from nnstudio.gui.plot_widgets import LossPlotWidget

__all__ = ["CurveBuffer", "LossPlot", "MetricsPlot", "smooth_ema"]


# ----- the widgets: light until shown ----------------------------------------------------

#: What a plot asks of the layout before its pyqtgraph widget exists: what that widget asks.
PLOT_SIZE_HINT = (600, 480)
PLOT_MINIMUM_SIZE_HINT = (68, 68)
#: Longest stretch the GUI thread spends creating Qt classes for pyqtgraph between two events.
QT_CLASSES_STEP_S = 0.008


class _PlotWidgetMaker(QtCore.QObject):
    """Makes the pyqtgraph widgets of shown plots, one per pass of the event loop, without long stalls.

    pyqtgraph's import copies every class of QtCore, QtGui and QtWidgets, and PySide6 creates
    those lazily: about 0.1 s that blocks the GUI thread in one piece even when a background thread
    does it. So the GUI thread first creates them a few at a time between events, then a daemon
    thread imports `nnstudio.gui.plot_widgets` (pyqtgraph's own modules: plain Python and numpy
    work, no QObject is made), and then each waiting plot makes its widget in its own pass. If
    the import fails in the thread, the plot's own import raises the error in the GUI thread.
    """

    _imported = QtCore.Signal()  # emitted by the thread, received in the GUI thread

    def __init__(self) -> None:
        super().__init__()
        self._imported_done = False
        self._started = False
        self._names: deque[tuple[object, str]] = deque()
        self._waiting: deque[weakref.ref[_LazyPlot]] = deque()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(0)  # a pass whenever the event queue is empty
        self._timer.timeout.connect(self._on_timer_timeout)
        self._imported.connect(self._on_imported)

    def request(self, plot: _LazyPlot) -> None:
        self._waiting.append(weakref.ref(plot))
        if self._imported_done:
            self._timer.start()
        elif not self._started:
            self._started = True
            if "pyqtgraph" not in sys.modules:
                self._names.extend((module, name) for module in (QtCore, QtGui, QtWidgets) for name in dir(module))
            self._timer.start()

    @QtCore.Slot()
    def _on_timer_timeout(self) -> None:
        if not self._imported_done:
            deadline = time.perf_counter() + QT_CLASSES_STEP_S
            while self._names and time.perf_counter() < deadline:
                module, name = self._names.popleft()
                getattr(module, name, None)
            if not self._names:
                self._timer.stop()
                threading.Thread(target=self._run, name="nnstudio-import-pyqtgraph", daemon=True).start()
            return
        while self._waiting:
            plot = self._waiting.popleft()()
            if plot is not None and shiboken6.isValid(plot) and not plot.has_plot_widget():
                plot.plot_widget  # noqa: B018 - makes it
                break
        if not self._waiting:
            self._timer.stop()

    def _run(self) -> None:
        try:
            import nnstudio.gui.plot_widgets  # noqa: F401
        except Exception:  # noqa: BLE001 - the GUI thread imports it again and raises there
            pass
        self._imported.emit()

    @QtCore.Slot()
    def _on_imported(self) -> None:
        self._imported_done = True
        self._timer.start()


_maker: _PlotWidgetMaker | None = None


def _plot_widget_maker() -> _PlotWidgetMaker:
    global _maker
    if _maker is None:
        _maker = _PlotWidgetMaker()
    return _maker


class _LazyPlot(QtWidgets.QWidget):
    """Stands in for its pyqtgraph widget until that exists, then holds it, filling the same space.

    The widget is created right after this one is first shown (once pyqtgraph has been imported in
    the background), or at once by anything that needs it: every attribute this class does not
    define is the pyqtgraph widget's (`getPlotItem()`, `curve()`, `add_steps()`, ...), so data
    given before the plot appears is never lost. Settings (smoothing, log scale, live off) given
    earlier are kept and applied to the widget when it is made.
    """

    widget_created = QtCore.Signal()

    _widget_class = ""  # its name in nnstudio.gui.plot_widgets
    _plot: Any = None
    _requested = False

    def __init__(self, parent: QtWidgets.QWidget | None = None, objectName: str | None = None):
        super().__init__(parent)
        if objectName:
            self.setObjectName(objectName)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.setBackgroundRole(QtGui.QPalette.ColorRole.Base)  # the plot's own background, before it is there
        self.setAutoFillBackground(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    # ----- the pyqtgraph widget ---------------------------------------------------------

    @property
    def plot_widget(self) -> Any:
        """The pyqtgraph widget, created now if it does not exist yet."""
        if self._plot is None:
            self._create_plot()
        return self._plot

    def has_plot_widget(self) -> bool:
        return self._plot is not None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.plot_widget, name)

    def _create_plot(self) -> None:
        from nnstudio.gui import plot_widgets

        plot = getattr(plot_widgets, self._widget_class)(self)
        self._configure(plot)
        self._plot = plot
        self.layout().addWidget(plot)
        plot.setGeometry(self.contentsRect())  # a visible placeholder need not wait for its layout
        if self.isVisible():
            plot.show()
        self.setAutoFillBackground(False)
        self.widget_created.emit()

    def _configure(self, plot: Any) -> None:
        """Apply settings given before the widget existed (subclasses)."""

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        if self._plot is None and not self._requested:
            self._requested = True
            _plot_widget_maker().request(self)

    def sizeHint(self) -> QtCore.QSize:
        return self._plot.sizeHint() if self._plot is not None else QtCore.QSize(*PLOT_SIZE_HINT)

    def minimumSizeHint(self) -> QtCore.QSize:
        return self._plot.minimumSizeHint() if self._plot is not None else QtCore.QSize(*PLOT_MINIMUM_SIZE_HINT)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self._plot is not None:
            self._plot.close()  # stops its live timer and releases the plot item, as closing it directly did
        super().closeEvent(event)

    # ----- what works without the widget --------------------------------------------------

    def is_live(self) -> bool:
        return self._plot is not None and self._plot.is_live()

    def is_paint_held(self) -> bool:
        """Whether a paint waits for a later pass (see plot_widgets._RunPlotWidget.hold_paint)."""
        return self._plot is not None and self._plot.is_paint_held()

    def set_live(self, live: bool) -> None:
        """While live, the application's RedrawScheduler pushes new data to the curves (see redraw.py)."""
        if live or self._plot is not None:
            self.plot_widget.set_live(live)

    def clear_history(self, include_current: bool = False) -> None:
        """Remove the earlier runs; with ``include_current`` the current run's data too."""
        if self._plot is not None:
            self._plot.clear_history(include_current)


class LossPlot(_LazyPlot):
    """Step loss (raw and optionally smoothed) and per-epoch train/validation loss.

    The API is `plot_widgets.LossPlotWidget`'s: add_steps, add_epoch(s), start_run, set_live, redraw,
    curve, step_curve, export_png, ...
    """

    _widget_class = "LossPlotWidget"
    _smoothing: float | None = None
    _log_y = False

    @property
    def smoothing(self) -> float | None:
        return self._plot.smoothing if self._plot is not None else self._smoothing

    def set_smoothing(self, alpha: float | None) -> None:
        """EMA weight of each new step (0 < alpha <= 1), or None for no smoothed curve."""
        if self._plot is not None:
            self._plot.set_smoothing(alpha)
        else:
            check_smoothing(alpha)
            self._smoothing = alpha

    def set_log_y(self, on: bool) -> None:
        if self._plot is not None:
            self._plot.set_log_y(on)
        else:
            self._log_y = bool(on)

    def _configure(self, plot: LossPlotWidget) -> None:
        if self._smoothing is not None:
            plot.set_smoothing(self._smoothing)
        if self._log_y:
            plot.set_log_y(True)


class MetricsPlot(_LazyPlot):
    """Per-epoch metric curves, one per metric name, and the learning rate on a right axis.

    The API is `plot_widgets.MetricsPlotWidget`'s: add_epoch(s), add_lr(s), add_grad_norms, start_run, set_live,
    redraw, metric_curve, curves, lr_curve, grad_norm_curve, export_png, ...
    """

    _widget_class = "MetricsPlotWidget"
