"""When live plots redraw: one timer for all of them, one plot per tick, each as often as its painting allows.

Painting a pyqtgraph plot is Python (axes, curves, view ranges) and holds the GIL the training thread
needs, so every paint is training time lost; two plots painted in the same pass of the event loop are
also one long freeze of the window. Measured on 2 cores, 32-16-10 at batch 256: with both plots redrawn
every 250 ms the window trained at 0.61× headless; the paints (12-16 ms for the loss plot, 8-10 ms for
the metrics plot, each data change painted twice) took ~25% of the fit's wall time.

So :class:`RedrawScheduler`:

- ticks every :data:`TICK_MS` and redraws at most one plot per tick (the most overdue one), so no two
  plots paint in the same pass;
- gives each plot an interval from what its own redraw cost the last time (an exponential average
  of the seconds the redraw and the paints that followed it took): ``cost / PAINT_BUDGET``, kept between
  :data:`MIN_INTERVAL_MS` and :data:`MAX_INTERVAL_MS`. A plot whose redraw takes 10 ms redraws about
  once a second (1% of the time); a cheap or unchanged plot, every 250 ms. The cost is remembered from
  one live period (run) to the next.

On 2 cores a millisecond of the GUI thread costs a CPU-bound training thread about two: the GIL it
waits for, and a core shared with its OpenMP team. With a 2% budget per plot, the redraws cost a
32-16-10 MLP 5-6% of its speed (0.90x headless with them, 0.96x and 0.945x without any, at batch 256
and 4096; 5 earlier runs on the plots), so each plot gets 1%.

A plot is anything with ``redraw()`` and ``take_paint_seconds()`` (seconds spent redrawing and painting
since the last call); :class:`~nnstudio.gui.plot_widgets._RunPlotWidget` measures its own ``redraw`` and
``paintEvent``. Handing new data to the curves and autoranging (``redraw``) took about a third of it.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

from PySide6 import QtCore

__all__ = ["MAX_INTERVAL_MS", "MIN_INTERVAL_MS", "PAINT_BUDGET", "RedrawScheduler", "TICK_MS", "scheduler"]

TICK_MS = 50
MIN_INTERVAL_MS = 250
MAX_INTERVAL_MS = 2000
#: Share of the wall time one plot may spend redrawing and painting while live.
PAINT_BUDGET = 0.01
#: Weight of the newest paint cost in the running average.
COST_WEIGHT = 0.5


class Redrawable(Protocol):
    def redraw(self) -> None: ...

    def take_paint_seconds(self) -> float: ...


class _Entry:
    __slots__ = ("plot", "due", "cost")

    def __init__(self, plot: Redrawable, due: float):
        self.plot = plot
        self.due = due
        self.cost = 0.0


class RedrawScheduler(QtCore.QObject):
    """Lives in the GUI thread; `add` a plot when it goes live, `remove` it when it stops."""

    def __init__(self, parent: QtCore.QObject | None = None, *, tick_ms: int = TICK_MS,
                 min_interval_ms: int = MIN_INTERVAL_MS, max_interval_ms: int = MAX_INTERVAL_MS,
                 budget: float = PAINT_BUDGET, clock: Callable[[], float] = time.perf_counter):
        super().__init__(parent)
        self.min_interval = min_interval_ms / 1000.0
        self.max_interval = max_interval_ms / 1000.0
        self.budget = budget
        self.clock = clock
        self._slack = tick_ms / 2000.0  # due within half a tick counts as due now (timers jitter)
        self._entries: list[_Entry] = []
        # A plot's last paint cost outlives its live period: the next run starts from it, not from zero
        # (which would paint 4 times a second until the average caught up).
        self._last_cost: dict[int, float] = {}
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._on_timer_timeout)

    # -- registration
    def add(self, plot: Redrawable) -> None:
        if self.contains(plot):
            return
        plot.take_paint_seconds()  # paints before going live (a resize, say) are not the live cost
        now = self.clock()
        # Spread plots that go live together over the interval, so they never come due in the same tick.
        offset = len(self._entries) * self.min_interval / 2
        cost = self._last_cost.get(id(plot), 0.0)
        entry = _Entry(plot, now + self._interval_for(cost) + offset)
        entry.cost = cost
        self._entries.append(entry)
        if not self._timer.isActive():
            self._timer.start()

    def remove(self, plot: Redrawable) -> None:
        for e in self._entries:
            if e.plot is plot:
                self._last_cost[id(plot)] = e.cost
        self._entries = [e for e in self._entries if e.plot is not plot]
        if not self._entries:
            self._timer.stop()

    def contains(self, plot: Redrawable) -> bool:
        return any(e.plot is plot for e in self._entries)

    def is_active(self) -> bool:
        return self._timer.isActive()

    def interval(self, plot: Redrawable) -> float | None:
        """Seconds between this plot's redraws as things stand (None if it is not live)."""
        for e in self._entries:
            if e.plot is plot:
                return self._interval_for(e.cost)
        return None

    # -- ticking
    def _interval_for(self, cost: float) -> float:
        return min(self.max_interval, max(self.min_interval, cost / self.budget))

    @QtCore.Slot()
    def _on_timer_timeout(self) -> None:
        self.tick()

    def tick(self) -> Redrawable | None:
        """Redraw the most overdue plot, if any is due; returns it."""
        now = self.clock()
        due = [e for e in self._entries if e.due <= now + self._slack]
        if not due:
            return None
        entry = min(due, key=lambda e: e.due)
        try:
            # What the previous redraw's paints cost decides how long this plot waits after this one.
            spent = entry.plot.take_paint_seconds()
            entry.cost = COST_WEIGHT * spent + (1.0 - COST_WEIGHT) * entry.cost
            entry.due = now + self._interval_for(entry.cost)
            # A plot that can paint in a pass of its own, after this one, does (see _RunPlotWidget.hold_paint).
            getattr(entry.plot, "redraw_later", entry.plot.redraw)()
        except RuntimeError:  # the widget was deleted while live
            self._entries.remove(entry)
            self._last_cost.pop(id(entry.plot), None)
            if not self._entries:
                self._timer.stop()
            return None
        return entry.plot


_scheduler: RedrawScheduler | None = None


def scheduler() -> RedrawScheduler:
    """The application's scheduler (created on first use, parented to the QApplication)."""
    global _scheduler
    app = QtCore.QCoreApplication.instance()
    try:
        current = _scheduler is not None and _scheduler.parent() is app
    except RuntimeError:  # deleted with an earlier QApplication
        current = False
    if not current:
        _scheduler = RedrawScheduler(app)
    return _scheduler
