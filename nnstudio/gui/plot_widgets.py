"""The pyqtgraph side of the live training plots (see `nnstudio.gui.plots`).

Importing this module imports pyqtgraph (about a quarter of a second, most of it PySide6 setting up
every Qt class pyqtgraph copies), so the window does not: `plots.LossPlot` and `plots.MetricsPlot`
create these widgets once they are shown, after pyqtgraph has been imported off the GUI thread.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from nnstudio.gui.redraw import scheduler
from nnstudio.gui.plots import (
    DOWNSAMPLE_PER_PIXEL, EARLIER_DASHES, FROZEN_MAX_BLOCKS, LEGEND_NAME_CHARS, MAX_EARLIER_RUNS,
    MIN_BLOCKS_PER_PIXEL, NONFINITE_COLOR, PALETTE, RECENT_POINTS, CurveBuffer, PeakPyramid, check_smoothing,
    smooth_ema)

__all__ = ["LossPlotWidget", "MetricsPlotWidget"]


_NICE = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def _nice_ceil(v: float) -> float:
    """The smallest of ..., 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, ... (× a power of ten) that is ≥ v."""
    if v <= 0 or not math.isfinite(v):
        return -_nice_floor(-v) if v < 0 else v
    scale = 10.0 ** math.floor(math.log10(v))
    for m in _NICE:
        if m * scale >= v * (1 - 1e-12):
            return m * scale
    return 10.0 * scale


def _nice_floor(v: float) -> float:
    if v <= 0 or not math.isfinite(v):
        return -_nice_ceil(-v) if v < 0 else v
    scale = 10.0 ** math.floor(math.log10(v))
    for m in reversed(_NICE):
        if m * scale <= v * (1 + 1e-12):
            return m * scale
    return scale


def stable_bounds(lo: float | None, hi: float | None, ax: int) -> tuple[float | None, float | None]:
    """Data bounds widened to round values, so autoranging moves the view (and makes pyqtgraph
    regenerate its axes, the costliest part of a paint) only when the data crosses one, not each time a
    point arrives. x (steps, epochs: growing from the left): the next of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8
    × 10^k, at most 25% of extra room. y: outward to a tenth of the span, rounded to 1, 2 or 5 × 10^k."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return lo, hi
    if ax == 0:
        return _nice_floor(lo), _nice_ceil(hi)
    span = hi - lo
    if span <= 0:
        return lo, hi
    raw = span / 10.0
    scale = 10.0 ** math.floor(math.log10(raw))
    unit = next(m * scale for m in (1.0, 2.0, 5.0, 10.0) if m * scale >= raw)
    return math.floor(lo / unit) * unit, math.ceil(hi / unit) * unit


class _LiveFlag:
    """Shared by a plot and its curves: while live, curves report rounded bounds (see stable_bounds);
    once the run is over, exact ones, so a finished plot fits its data."""

    __slots__ = ("live", "x_extent")

    def __init__(self) -> None:
        self.live = False
        self.x_extent: float | None = None  # where the live run's x will end (its last step or epoch)


class _Curve(pg.PlotDataItem):
    """A PlotDataItem that, as an earlier run's backdrop, can leave y autoranging to others, and whose
    bounds are rounded while its plot is live, so autoranging does not repaint the axes at every redraw
    (painting the loss plot: median 11 -> 3.3 ms)."""

    ignore_y_bounds = False
    live_flag: _LiveFlag | None = None

    def set_ignore_y_bounds(self, ignore: bool) -> None:
        if ignore != self.ignore_y_bounds:
            self.ignore_y_bounds = ignore
            self.informViewBoundsChanged()

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        if ax == 1 and self.ignore_y_bounds:
            return None, None
        lo, hi = super().dataBounds(ax, frac, orthoRange)
        flag = self.live_flag
        if flag is not None and flag.live:
            if ax == 0 and hi is not None and flag.x_extent is not None:
                hi = max(hi, flag.x_extent)
            return stable_bounds(lo, hi, ax)
        return lo, hi


class _Series:
    """One curve of the current run: its buffer, its item, and non-finite stretches seen."""

    def __init__(self, key: str, label: str, item: pg.PlotDataItem, view: pg.ViewBox | None,
                 track_nonfinite: bool, legend_rank: int, dash_when_faded: bool,
                 decimate: bool):
        self.key = key
        self.label = label
        self.item = item
        self.view = view  # None: the PlotItem's own ViewBox
        self.legend_rank = legend_rank  # lowest ranked curve stands for an earlier run
        self.dash_when_faded = dash_when_faded
        self.buffer = CurveBuffer()
        self.dirty = False
        self.pyramid = PeakPyramid() if decimate else None
        self.level = 0  # pyramid level on screen (0: raw points)
        # Two points per non-finite stretch: (first x, anchor), (last x, anchor).
        self.marks: CurveBuffer | None = CurveBuffer(16) if track_nonfinite else None
        self.marks_dirty = False
        self._open_run = False
        self._last_finite = math.nan
        self._first_finite = math.nan

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.buffer.extend(xs, ys)
        self.dirty = True
        if self.pyramid is not None and len(self.buffer) > RECENT_POINTS + RECENT_POINTS // 2:
            self.pyramid.update(self.buffer)  # summarises and drops old points even while nothing redraws
        if self.marks is not None and ys.size:
            self._track(xs, ys)

    def _track(self, xs: np.ndarray, ys: np.ndarray) -> None:
        finite = np.isfinite(ys)
        if finite.all():
            self._open_run = False
            if math.isnan(self._first_finite):
                self._first_finite = float(ys[0])
            self._last_finite = float(ys[-1])
            return
        bad = (~finite).view(np.int8)
        edges = np.diff(np.concatenate(([0], bad, [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1) - 1
        idx = np.where(finite, np.arange(ys.size), -1)
        last_idx = np.maximum.accumulate(idx)
        before = np.where(starts > 0, last_idx[np.maximum(starts - 1, 0)], -1)
        anchors = np.where(before >= 0, ys[np.maximum(before, 0)], self._last_finite)
        first = 0
        if self._open_run and starts[0] == 0:
            self.marks.set_last(xs[ends[0]], self.marks.y[-1])
            first = 1
        if starts.size > first:
            pair_x = np.column_stack((xs[starts[first:]], xs[ends[first:]])).ravel()
            pair_y = np.repeat(anchors[first:], 2)
            self.marks.extend(pair_x, pair_y)
        self.marks_dirty = True
        self._open_run = bool(not finite[-1])
        if finite.any():
            if math.isnan(self._first_finite):
                self._first_finite = float(ys[np.argmax(finite)])
            self._last_finite = float(ys[last_idx[-1]])

    def mark_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Marker points; stretches with no finite value before them sit at the first one."""
        if self.marks is None or not len(self.marks):
            return np.empty(0), np.empty(0)
        y = self.marks.y.copy()
        unknown = np.isnan(y)
        if unknown.any():
            y[unknown] = self._first_finite if math.isfinite(self._first_finite) else 1.0
        return self.marks.x.copy(), y

    def _choose_level(self, x_range: tuple[float, float] | None, width_px: float) -> int:
        """Pyramid level for the visible x range (None: all points are visible)."""
        if self.pyramid is None:
            return 0
        if self.dirty:
            self.pyramid.update(self.buffer)
        n = len(self.buffer) + self.buffer.dropped
        if x_range is not None and n:
            n = self.pyramid.index_of(self.buffer, x_range[1]) - self.pyramid.index_of(self.buffer, x_range[0])
        return self.pyramid.level_for(n, int(max(width_px, 100) * MIN_BLOCKS_PER_PIXEL))

    def push(self, x_range: tuple[float, float] | None = None, width_px: float = 0.0,
             level_changes_only: bool = False) -> None:
        """Hand the curve what it should draw, if that changed."""
        level = self._choose_level(x_range, width_px)
        if not (level != self.level or (self.dirty and not level_changes_only)):
            return
        if self.marks is not None and math.isnan(self._first_finite):
            return  # nothing drawable yet (the markers show the non-finite values)
        if self.pyramid is not None:
            x, y = self.pyramid.data(self.buffer, level)
        else:
            x, y = self.buffer.x, self.buffer.y
        self.item.setData(x, y)
        self.level = level
        self.dirty = False

    def freeze(self) -> None:
        """Give the item trimmed copies so the buffers can go.

        Long curves keep only a coarse pyramid level: an earlier run is a faded backdrop,
        and millions of raw points in it would slow every redraw of the current run.
        """
        if len(self.buffer):
            if self.pyramid is not None:
                self.pyramid.update(self.buffer)
                level = 0
                total = len(self.buffer) + self.buffer.dropped
                while (level < self.pyramid.levels
                       and total // self.pyramid.factor**level > FROZEN_MAX_BLOCKS):
                    level += 1
                x, y = self.pyramid.data(self.buffer, level)
            else:
                x, y = self.buffer.x, self.buffer.y
            self.item.setData(np.array(x), np.array(y))
        self.buffer = CurveBuffer(1)
        self.pyramid = None
        self.dirty = False


def _finite_range(r) -> bool:
    return r is not None and r[0] is not None and r[1] is not None and math.isfinite(r[0]) and math.isfinite(r[1])


class _PlotViewBox(pg.ViewBox):
    """A ViewBox that remembers what the curves of earlier runs add to its autorange.

    pyqtgraph asks every item for its data bounds and pixel padding at each autorange (twice per redraw of
    a live plot): with 5 earlier runs, 20 items and 2.5 ms a time, most of it for curves that never change.
    Their contributions are kept here (`freeze`), keyed on what they depend on: the plot's live state and
    planned x extent, the item's ignoring of y, and a generation bumped by ``forget_frozen`` (log scale).
    The union and the pixel padding are computed as pyqtgraph's ``childrenBounds`` computes them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._frozen: dict[int, tuple[pg.GraphicsObject, tuple | None, object]] = {}
        self._generation = 0

    def freeze(self, item: pg.GraphicsObject) -> None:
        self._frozen[id(item)] = (item, None, None)

    def thaw(self, item: pg.GraphicsObject) -> None:
        self._frozen.pop(id(item), None)

    def forget_frozen(self) -> None:
        self._generation += 1

    def childrenBounds(self, frac=None, orthoRange=(None, None), items=None):
        frac = (1.0, 1.0) if frac is None else tuple(frac)
        if items is not None or not self._frozen or any(r is not None for r in orthoRange):
            return super().childrenBounds(frac, orthoRange, items)
        entries = []
        for item in self.addedItems:
            frozen = self._frozen.get(id(item))
            if frozen is None or frozen[0] is not item:
                entry = self._item_bounds(item, frac)
            else:
                flag = getattr(item, "live_flag", None)
                key = (frac, self._generation, getattr(item, "ignore_y_bounds", False),
                       flag.live if flag is not None else None, flag.x_extent if flag is not None else None)
                if frozen[2] == key:
                    entry = frozen[1]
                else:
                    entry = self._item_bounds(item, frac)
                    self._frozen[id(item)] = (item, entry, key)
            if entry is not None:
                entries.append(entry)
        span: list[list[float] | None] = [None, None]
        for rect, use_x, use_y, _pad in entries:
            if use_y:
                lo, hi = rect.top(), rect.bottom()
                span[1] = [lo, hi] if span[1] is None else [min(lo, span[1][0]), max(hi, span[1][1])]
            if use_x:
                lo, hi = rect.left(), rect.right()
                span[0] = [lo, hi] if span[0] is None else [min(lo, span[0][0]), max(hi, span[0][1])]
        # Pixel margins (symbols), from the tentative range, as pyqtgraph does.
        for axis, length in ((0, self.width()), (1, self.height())):
            if length > 0 and span[axis] is not None:
                px = (span[axis][1] - span[axis][0]) / length
                for rect, use_x, use_y, pad in entries:
                    if pad and (use_x if axis == 0 else use_y):
                        lo, hi = (rect.left(), rect.right()) if axis == 0 else (rect.top(), rect.bottom())
                        span[axis] = [min(span[axis][0], lo - pad * px), max(span[axis][1], hi + pad * px)]
        return span

    def _item_bounds(self, item, frac):
        """(bounds in view coordinates, use x, use y, pixel padding) of one unrotated item, or None."""
        if not item.isVisible() or item.scene() is not self.scene():
            return None
        if getattr(item, "dataBounds", None) is None:
            if item.flags() & QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents:
                return None
            return self.mapFromItemToView(item, item.boundingRect()).boundingRect(), True, True, 0
        xr = item.dataBounds(0, frac=frac[0], orthoRange=None)
        yr = item.dataBounds(1, frac=frac[1], orthoRange=None)
        pad = item.pixelPadding() if hasattr(item, "pixelPadding") else 0
        use_x, use_y = _finite_range(xr), _finite_range(yr)
        if not (use_x or use_y):
            return None
        xr = xr if use_x else (0.0, 0.0)
        yr = yr if use_y else (0.0, 0.0)
        rect = QtCore.QRectF(xr[0], yr[0], xr[1] - xr[0], yr[1] - yr[0])
        return self.mapFromItemToView(item, rect).boundingRect(), use_x, use_y, pad


@dataclass
class _EarlierRun:
    name: str
    items: list[tuple[pg.GraphicsObject, pg.ViewBox | None]] = field(default_factory=list)
    legend_item: pg.PlotDataItem | None = None


@dataclass(frozen=True)
class _Fade:
    """How an earlier run's curve is drawn, kept so that a new palette can mix its colours again."""

    color: QtGui.QColor
    alpha: int
    dash: list[int] | None
    symbol_color: QtGui.QColor | None
    symbol_alpha: int


#: Below this width a plot's legend moves under the view, so the curves keep most of the width.
LEGEND_BELOW_WIDTH = 560

#: Delay of a held paint (see _RunPlotWidget.hold_paint): a timer, so that it runs in a later pass.
PAINT_LATER_MS = 1

#: Most rounds of autoranging a view in one go (it settles in 2-3; see _RunPlotWidget._settle_view).
SETTLE_ROUNDS = 4

#: An earlier run whose finite values all lie within ±this needs no dynamic range limit.
MODERATE_VALUES = 1e4


def _over(color: QtGui.QColor, alpha: int, background: QtGui.QColor) -> QtGui.QColor:
    """``color`` at ``alpha`` (0-255) painted over ``background``, as one opaque colour."""
    a = max(0, min(255, alpha)) / 255.0
    c, b = QtGui.QColor(color), QtGui.QColor(background)
    return QtGui.QColor.fromRgbF(a * c.redF() + (1 - a) * b.redF(), a * c.greenF() + (1 - a) * b.greenF(),
                                 a * c.blueF() + (1 - a) * b.blueF())


#: Pixmap memory (KiB) each live plot widget wants in Qt's global QPixmapCache; see _reserve_pixmaps.
_PIXMAP_NEEDS_KB: dict[int, int] = {}


def _reserve_pixmaps(plot: QtWidgets.QWidget, kb: int) -> None:
    """Make Qt's pixmap cache (10 MiB by default) hold what the plots cache, with room to spare.

    Axes paint from device-coordinate caches, one pixmap each (earlier runs did too, ~40 pixmaps of ~1.2 MiB
    with 5 of them, before they moved into the view's background). Over the limit, the cache evicted them in
    turn, so every repaint drew everything again and paid for the pixmaps on top (loss plot, 5 earlier runs
    of 90 epochs: 18.9 ms a repaint, 4.8 ms once they all fit); a large or high-DPI window still needs more
    than the default for the axes of both plots."""
    if kb > 0:
        _PIXMAP_NEEDS_KB[id(plot)] = kb
    else:
        _PIXMAP_NEEDS_KB.pop(id(plot), None)
    wanted = sum(_PIXMAP_NEEDS_KB.values())
    if wanted > QtGui.QPixmapCache.cacheLimit():
        QtGui.QPixmapCache.setCacheLimit(wanted)


def _faded(color: QtGui.QColor | str, alpha: int) -> QtGui.QColor:
    c = QtGui.QColor(color)
    c.setAlpha(alpha)
    return c


class _RunPlotWidget(pg.PlotWidget):
    """Shared machinery: current-run series, faded earlier runs, live timer, PNG export."""

    _LEGEND_COLUMN = 3  # of the plot item's layout: right of the view and its right axis

    def __init__(self, parent=None, objectName: str | None = None, *, x_label: str, y_label: str):
        super().__init__(parent, viewBox=_PlotViewBox())
        self._live_flag = _LiveFlag()
        if objectName:
            self.setObjectName(objectName)
        item = self.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        item.setLabel("bottom", x_label)
        item.setLabel("left", y_label)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setContentsMargins(4, 10, 10, 4)  # room for the top tick label
        for name in ("left", "bottom", "right"):
            # Major and minor grid lines only: the third level halves paint speed.
            item.getAxis(name).setStyle(maxTickLevel=1)
            # Axes are painted from a pixmap until their ticks change: replaying their text cost 3 ms
            # an axis at every repaint of the plot (measured), most often for ticks that had not moved.
            item.getAxis(name).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # The legend sits right of the plot, not over it: a diverging loss puts its
        # non-finite markers at the top right, exactly where an inset legend would be.
        self._legend = pg.LegendItem(offset=None, labelTextSize="8pt", verSpacing=-6,
                                     frame=False)
        self._legend.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                                   QtWidgets.QSizePolicy.Policy.Fixed)
        item.layout.addItem(self._legend, 2, self._LEGEND_COLUMN)
        item.layout.setAlignment(self._legend, QtCore.Qt.AlignmentFlag.AlignTop)
        item.layout.setColumnStretchFactor(self._LEGEND_COLUMN, 0)
        self._legend_below = False  # a narrow plot shows its legend under the x axis (see _place_legend)
        self._series: dict[str, _Series] = {}
        self._context: Hashable | None = None  # what the runs on the plot share (see start_run)
        self._run_name = ""
        self._runs_started = 1
        self._earlier: deque[_EarlierRun] = deque()
        self._backdrop_painted = False  # the cached background holds earlier runs (see drawBackground)
        self._backdrop_ignores_y = False
        self._marks_item = self._new_marks_item()
        self._marks_in_legend = False
        self._legend_pending = False
        self._paint_seconds = 0.0  # painting since the redraw scheduler last asked (see redraw.py)
        self._relevel_pending = False
        self._after_paint: list[Callable[[], None]] = []  # see hold_paint
        item.vb.sigXRangeChanged.connect(self._on_view_x_range_changed)
        item.vb.sigResized.connect(self._on_view_x_range_changed)
        self._watch_backdrop(item.vb)
        self._apply_palette()

    # ----- public API -------------------------------------------------------------------

    @property
    def run_name(self) -> str:
        return self._run_name

    def is_live(self) -> bool:
        return self._live_flag.live

    def set_live(self, live: bool) -> None:
        """While live, the application's RedrawScheduler pushes new data to the curves: every 250 ms, or
        less often when redrawing this plot is slow (it may take 1% of the time; see redraw.py)."""
        if live != self._live_flag.live:
            self._live_flag.live = live
            for item in self._curves():
                item.informViewBoundsChanged()
        if live:
            scheduler().add(self)
            self._settle_view()
        else:
            scheduler().remove(self)
            self.redraw()

    def hold_paint(self, then: Callable[[], None] | None = None) -> None:
        """Paint this plot in a later pass of the event loop than the current one.

        What changes a plot (new points, a new run, the end of one) and the paint it causes used to run in
        one pass: Qt delivers the scene's repaint as a posted event, in the same batch, so the window froze
        for both (20 + 25 ms at the start of a run with 5 earlier runs). With the viewport's updates off
        until a short timer fires, the paint comes after the timers already due: two short freezes.

        ``then`` runs in a pass after that paint (the next step of a sequence: the other plot's start)."""
        if then is not None:
            self._after_paint.append(then)
        viewport = self.viewport()
        if viewport.updatesEnabled():
            viewport.setUpdatesEnabled(False)
            QtCore.QTimer.singleShot(PAINT_LATER_MS, self, self._release_paint)

    def is_paint_held(self) -> bool:
        return not self.viewport().updatesEnabled() or bool(self._after_paint)

    @QtCore.Slot()
    def _release_paint(self) -> None:
        self.viewport().setUpdatesEnabled(True)  # repaints the whole viewport once, in the next pass
        if self._after_paint:
            QtCore.QTimer.singleShot(PAINT_LATER_MS, self, self._run_after_paint)  # due after that paint

    @QtCore.Slot()
    def _run_after_paint(self) -> None:
        waiting, self._after_paint = self._after_paint, []
        for fn in waiting:
            fn()

    def plan_x(self, extent: float | None) -> None:
        """Where the live run's x will end (its last step or epoch), or None if unknown. While live, the x
        axis spans it from the start, so the view does not move as the run advances: each move repainted
        the axes and every earlier run (14 items), twice; the curve grows towards the right edge instead."""
        if extent != self._live_flag.x_extent:
            self._live_flag.x_extent = extent
            if self._live_flag.live:
                for item in self._curves():
                    item.informViewBoundsChanged()
                self._settle_view()

    def _curves(self) -> list[_Curve]:
        items = [s.item for s in self._series.values()] + [self._marks_item]
        items += [item for run in self._earlier for item, _view in run.items]
        return [item for item in items if isinstance(item, _Curve)]

    def take_paint_seconds(self) -> float:
        """Seconds spent redrawing and painting since the last call (what the redraw scheduler budgets)."""
        spent, self._paint_seconds = self._paint_seconds, 0.0
        return spent

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        start = time.perf_counter()
        try:
            super().paintEvent(event)
        finally:
            self._paint_seconds += time.perf_counter() - start

    # ----- earlier runs: one backdrop, in the view's cached background ----------------------------
    #
    # Earlier runs never change while the current one grows, so they are painted once into the view's
    # background, which QGraphicsView caches as one opaque pixmap of the viewport (pyqtgraph turns that
    # cache on): a repaint copies it. Their items stay in the plot (legend, autoranging, export) but have
    # no contents of their own to paint. As items each with a device-coordinate cache, every repaint of
    # the plot blended one translucent pixmap per curve of each earlier run: with 5 earlier runs, ~15
    # blends of the whole plot area, 60% of what a live redraw of the loss plot cost (measured).

    def drawBackground(self, painter: QtGui.QPainter, rect: QtCore.QRectF) -> None:
        super().drawBackground(painter, rect)
        if getattr(self, "_earlier", None):
            self._backdrop_painted = True
        for run in getattr(self, "_earlier", ()):
            for item, _view in run.items:
                view = item.getViewBox()
                if view is None or not item.isVisible():
                    continue
                for part in (item.curve, item.scatter):
                    if not part.isVisible():
                        continue
                    painter.save()
                    try:
                        painter.setClipRect(view.sceneBoundingRect(), QtCore.Qt.ClipOperation.IntersectClip)
                        painter.setTransform(part.sceneTransform(), True)
                        part.paint(painter, None, self)
                    finally:
                        painter.restore()

    def _watch_backdrop(self, view: pg.ViewBox) -> None:
        """Paint the backdrop again when ``view`` (where earlier curves live) moves or changes size."""
        view.sigRangeChanged.connect(self._on_backdrop_moved)
        view.sigResized.connect(self._on_backdrop_moved)

    @QtCore.Slot()
    def _on_backdrop_moved(self, *_args) -> None:
        self._backdrop_changed()

    def _backdrop_changed(self) -> None:
        if self._earlier or self._backdrop_painted:
            self._backdrop_painted = False
            self.resetCachedContent()
            self.viewport().update()

    @staticmethod
    def _in_backdrop(item: pg.PlotDataItem, on: bool) -> None:
        """An earlier run's curve is painted by the backdrop (on), or by itself, as any item (off)."""
        for part in (item.curve, item.scatter):
            part.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.NoCache)
            part.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, on)

    def start_run(self, name: str, context: Hashable | None = None) -> None:
        """Fade the current run's curves into the earlier runs and start an empty one.

        Earlier runs stay only while they share ``context`` (the window passes dataset, target and task):
        curves of another dataset or task on the same axes would mislead, so they leave the plot (their
        TensorBoard logs keep them). Without a context every run is kept, as before."""
        has_data = any(len(s.buffer) for s in self._series.values())
        if context is not None and self._context is not None and context != self._context:
            self.clear_history(include_current=True)
            self._runs_started += has_data
        elif has_data:
            self._retire_current_run()
            self._runs_started += 1
        if context is not None:
            self._context = context
        self._run_name = name or f"run {self._runs_started}"
        self._rebuild_legend()
        self._flush_legend()  # once, now: the next paint shows the new legend (no second paint for it)
        self._settle_view()

    def earlier_run_names(self) -> list[str]:
        """Names of the kept earlier runs, newest first."""
        return [run.name for run in reversed(self._earlier)]

    def clear_history(self, include_current: bool = False) -> None:
        """Remove the earlier runs; with ``include_current`` the current run's data too."""
        while self._earlier:
            self._remove_earlier(self._earlier.popleft())
        if include_current:
            for series in list(self._series.values()):
                self._remove_item(series.item, series.view)
            self._series.clear()
            self._remove_item(self._marks_item, None)
            self._marks_item = self._new_marks_item()
            self._marks_in_legend = False
            self._on_current_run_cleared()
        self._rebuild_legend()

    def curve(self, key: str) -> pg.PlotDataItem | None:
        series = self._series.get(key)
        return series.item if series else None

    @property
    def nonfinite_item(self) -> pg.PlotDataItem:
        """Red markers spanning the current run's non-finite stretches."""
        return self._marks_item

    def legend_labels(self) -> list[str]:
        self._flush_legend()
        return [label.text for _, label in self._legend.items]

    def redraw_later(self) -> None:
        """`redraw`, for the redraw scheduler: what changed is painted in a later pass (see hold_paint), and
        nothing is painted when nothing changed."""
        if any(s.dirty or s.marks_dirty for s in self._series.values()):
            self.hold_paint()
        self.redraw()

    def redraw(self) -> None:
        """Push buffered data to the curves; cheap when nothing changed."""
        start = time.perf_counter()
        try:
            self._redraw()
        finally:
            # Part of what a redraw costs the GUI thread, with the paints it causes (see redraw.py): the
            # data handed to the curves and the autoranging took a third of it (loss plot, 5 earlier runs).
            self._paint_seconds += time.perf_counter() - start

    def _redraw(self) -> None:
        view = self._view_state()
        if view is None:
            return
        marks_changed = False
        for series in self._series.values():
            series.push(*view)
            if series.marks_dirty:
                marks_changed = True
                series.marks_dirty = False
        self._update_backdrop()
        if marks_changed:
            xs, ys = zip(*(s.mark_points() for s in self._series.values()))
            self._marks_item.setData(np.concatenate(xs), np.concatenate(ys))
            if not self._marks_in_legend:
                self._marks_in_legend = True
                self._rebuild_legend()
        self._settle_view()

    def _update_pixmap_reserve(self) -> None:
        """Room in the pixmap cache for this plot's cached items (see _reserve_pixmaps), a quarter to spare."""
        parts = 3  # axes (earlier runs are painted into the view's background, see drawBackground)
        area = self.viewport().width() * self.viewport().height() * self.devicePixelRatioF() ** 2
        _reserve_pixmaps(self, int(1.25 * parts * area * 4 / 1024))

    def _place_legend(self) -> None:
        """Right of the view where the plot is wide; under it, in two columns, where the view would be squeezed."""
        below = self.width() < LEGEND_BELOW_WIDTH
        if below == self._legend_below:
            return
        self._legend_below = below
        layout = self.getPlotItem().layout
        layout.removeItem(self._legend)
        if below:
            layout.addItem(self._legend, 4, 1)
            layout.setAlignment(self._legend, QtCore.Qt.AlignmentFlag.AlignHCenter)
            self._legend.setColumnCount(2)
        else:
            layout.addItem(self._legend, 2, self._LEGEND_COLUMN)
            layout.setAlignment(self._legend, QtCore.Qt.AlignmentFlag.AlignTop)
            self._legend.setColumnCount(1)

    def legend_is_below(self) -> bool:
        return self._legend_below

    def history_nbytes(self) -> int:
        """Bytes the current run's buffers and summaries hold (bounded: see plots.PeakPyramid)."""
        total = 0
        for series in self._series.values():
            total += series.buffer.nbytes + (series.pyramid.nbytes if series.pyramid is not None else 0)
            total += series.marks.nbytes if series.marks is not None else 0
        return total

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        if hasattr(self, "_legend_below"):
            self._place_legend()
        super().resizeEvent(event)
        if hasattr(self, "_earlier"):
            self._update_pixmap_reserve()
            self._backdrop_changed()

    def _settle_view(self) -> None:
        """Autorange now, until the view stops moving, so that the next paint is the only one.

        pyqtgraph autoranges lazily, when it paints. The new range changes the view's scale, which changes
        the data bounds again (symbols pad them by pixels), so one change of the data used to take three
        paints to settle, each redrawing the axes and every curve: with 4 earlier runs, 3 × 14 ms for the
        loss plot. Settled here, the same change costs one paint (measured: 43 -> 19 ms of painting)."""
        if not self.isVisible():
            return  # a hidden view has no size to range for; it settles when it is shown
        view = self.getPlotItem().vb
        for _ in range(SETTLE_ROUNDS):
            view.prepareForPaint()  # autorange if needed, then the view's matrix (which may ask for another)
            if not getattr(view, "_autoRangeNeedsUpdate", False):
                break

    def _update_backdrop(self) -> None:
        """Earlier runs count for the y range only until the current run draws something,
        so a diverged earlier run does not squash the current one."""
        current_drawn = any(s.item.getOriginalDataset()[0] is not None
                            for s in self._series.values())
        if current_drawn != self._backdrop_ignores_y:
            self._backdrop_ignores_y = current_drawn
            for run in self._earlier:
                for item, _view in run.items:
                    item.set_ignore_y_bounds(current_drawn)

    def _view_state(self) -> tuple[tuple[float, float] | None, float] | None:
        """(visible x range or None when autoranging, width in pixels); None once closed."""
        plot_item = self.getPlotItem()
        if plot_item is None:  # PlotWidget.close() drops it
            self._stop_live()
            return None
        view = plot_item.vb
        x_range = None if view.autoRangeEnabled()[0] else tuple(view.viewRange()[0])
        return x_range, view.width()

    def export_png(self, path: str | os.PathLike) -> None:
        """Save the plot as a PNG image at its on-screen size."""
        path = os.fspath(path)
        self.redraw()
        self._flush_legend()
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OSError(f"Cannot save the plot to {path}: the folder {folder} does not exist.")
        import pyqtgraph.exporters  # noqa: F401  (registers ImageExporter; only exporting needs it)

        earlier = [item for run in self._earlier for item, _view in run.items]
        for item in earlier:  # the exporter renders the scene's items, not the view's background
            self._in_backdrop(item, False)
        try:
            ok = pg.exporters.ImageExporter(self.getPlotItem()).export(path)
        except Exception as exc:  # pyqtgraph raises bare Exception for a zero-size plot
            raise OSError(f"Cannot save the plot to {path}: {exc}") from exc
        finally:
            for item in earlier:
                self._in_backdrop(item, True)
        if not ok:
            raise OSError(
                f"Cannot save the plot to {path}: writing the image failed. "
                "Check that the folder is writable and the name ends in .png."
            )

    # ----- for subclasses ---------------------------------------------------------------

    def _on_current_run_cleared(self) -> None:
        """Recreate the fixed series of an empty run (subclasses)."""

    def _add_series(self, key: str, label: str, *, color: str, width: float = 1.5,
                    alpha: int = 255, symbol: str | None = None, view: pg.ViewBox | None = None,
                    track_nonfinite: bool = True, z: float = 0.0, antialias: bool = True,
                    legend_rank: int = 0, dash_when_faded: bool = True,
                    decimate: bool = False) -> _Series:
        """Add a curve to the current run.

        Step-rate curves pass ``decimate=True`` (draw from a min/max pyramid when zoomed
        out) and ``antialias=False``, both for speed.
        """
        pen = pg.mkPen(_faded(color, alpha), width=width)
        kwargs = {}
        if symbol is not None:
            kwargs = dict(symbol=symbol, symbolSize=6, symbolPen=pg.mkPen(color),
                          symbolBrush=pg.mkBrush(color))
        if decimate:
            # Peak downsampling keeps each pixel column's min and max, so ~1.5 samples per
            # pixel look the same as pyqtgraph's default 5 and draw several times faster.
            kwargs["autoDownsampleFactor"] = DOWNSAMPLE_PER_PIXEL
        item = _Curve(pen=pen, connect="finite", antialias=antialias, **kwargs)
        item.live_flag = self._live_flag
        item.setZValue(z)
        if view is None:
            self.getPlotItem().addItem(item)
        else:
            view.addItem(item)
            # No clipToView here: a linked view's own x range lags behind the main one.
            item.setDownsampling(auto=True, method="peak")
        series = _Series(key, label, item, view, track_nonfinite, legend_rank, dash_when_faded,
                         decimate)
        self._series[key] = series
        self._rebuild_legend()
        return series

    def _remove_series(self, key: str) -> None:
        series = self._series.pop(key, None)
        if series is not None:
            self._remove_item(series.item, series.view)
            self._rebuild_legend()

    def _extend(self, key: str, xs, ys) -> None:
        self._series[key].extend(np.asarray(xs, dtype=np.float64).ravel(),
                                 np.asarray(ys, dtype=np.float64).ravel())

    # ----- internals --------------------------------------------------------------------

    def _new_marks_item(self) -> _Curve:
        item = _Curve(
            pen=pg.mkPen(NONFINITE_COLOR, width=2, style=QtCore.Qt.PenStyle.DotLine),
            connect="pairs", symbol="x", symbolSize=11,
            symbolPen=pg.mkPen(NONFINITE_COLOR, width=2), symbolBrush=pg.mkBrush(NONFINITE_COLOR),
        )
        item.setZValue(10)
        item.live_flag = self._live_flag
        self.getPlotItem().addItem(item)
        return item

    def _retire_current_run(self) -> None:
        self.redraw()
        dash = EARLIER_DASHES[(self._runs_started - 1) % len(EARLIER_DASHES)]
        run = _EarlierRun(self._run_name or f"run {self._runs_started}")
        kept = []
        for series in self._series.values():
            has_data = len(series.buffer) > 0
            series.freeze()
            if has_data:
                self._fade(series.item, dash if series.dash_when_faded else None)
                run.items.append((series.item, series.view))
                kept.append(series)
            else:
                self._remove_item(series.item, series.view)
        if kept:
            run.legend_item = min(kept, key=lambda s: s.legend_rank).item
        if self._marks_in_legend:
            self._fade(self._marks_item, dash, alpha=110)
            run.items.append((self._marks_item, None))
        else:
            self._remove_item(self._marks_item, None)
        self._marks_item = self._new_marks_item()
        self._marks_in_legend = False
        self._series.clear()
        for item, _view in run.items:
            item.set_ignore_y_bounds(False)
        self._backdrop_ignores_y = False
        for earlier in self._earlier:
            for item, _view in earlier.items:
                item.set_ignore_y_bounds(False)
        self._earlier.append(run)
        view = self.getPlotItem().vb
        for item, item_view in run.items:
            if item_view is None:
                view.freeze(item)
        while len(self._earlier) > MAX_EARLIER_RUNS:
            self._remove_earlier(self._earlier.popleft())
        self._backdrop_changed()
        self._on_current_run_cleared()

    def _fade(self, item: pg.PlotDataItem, dash: list[int] | None, alpha: int = 80) -> None:
        """Turn a curve of the current run into a backdrop: lighter, thinner, dashed, behind the current run."""
        pen = pg.mkPen(item.opts["pen"])
        symbol_color = pg.mkPen(item.opts["symbolPen"]).color() if item.opts["symbol"] is not None else None
        item.fade = _Fade(pen.color(), min(alpha, pen.color().alpha() // 2), dash, symbol_color, alpha)
        style = self._faded_style(item)
        if item.opts["symbol"] is not None:
            style["symbolSize"] = max(4, int(item.opts["symbolSize"]) - 2)
        # An earlier run never changes, so it needs none of the per-view work pyqtgraph does for live data:
        # no clipping to the view and no downsampling (its points are already trimmed, see _Series.freeze),
        # and no dynamic range limit unless its values are extreme. Each of those redid the item's data,
        # path and cache at every change of the view (prepareForPaint 2 -> 7 ms with 4 earlier runs).
        style.update(clipToView=False, autoDownsample=False, downsample=1)
        x, y = item.getOriginalDataset()
        finite = y[np.isfinite(y)] if y is not None else np.empty(0)
        if not finite.size or float(np.abs(finite).max()) <= MODERATE_VALUES:
            style["dynamicRangeLimit"] = None
        # All of it in one call: each setter redid the item's display data (retiring a run 19.6 -> 12.9 ms).
        item.setData(x, y, **style)
        item.setZValue(-10)
        # Painted into the backdrop, once per change of view (each one cost 2-4 ms of Python and path
        # drawing at every repaint of the plot, measured; and then, from its own pixmap, a blend of the area).
        self._in_backdrop(item, True)

    def _faded_style(self, item: pg.PlotDataItem) -> dict:
        """Pens of a faded curve: one pixel wide, in opaque colours mixed with the background. Qt strokes a
        translucent path as one filled outline (so that it does not darken where it crosses itself), and a
        dashed pen wider than a pixel as dash outlines: with 4 earlier runs, drawing their curves cost 9 ms
        a paint with translucent pens, 8 ms with opaque 1.5-pixel dashes, 1.6 ms as now."""
        fade: _Fade = item.fade
        background = self.backgroundBrush().color()
        pen = pg.mkPen(_over(fade.color, fade.alpha, background), width=1)
        if fade.dash is not None:
            pen.setDashPattern(fade.dash)
        style = {"pen": pen}
        if fade.symbol_color is not None:
            style["symbolPen"] = pg.mkPen(_over(fade.symbol_color, fade.symbol_alpha, background))
            style["symbolBrush"] = pg.mkBrush(_over(fade.symbol_color, fade.symbol_alpha // 2, background))
        return style

    def _paint_faded(self, item: pg.PlotDataItem) -> None:
        item.setData(*item.getOriginalDataset(), **self._faded_style(item))

    def _remove_item(self, item, view: pg.ViewBox | None) -> None:
        self._legend.removeItem(item)
        if view is None:
            self.getPlotItem().removeItem(item)
        else:
            view.removeItem(item)

    def _remove_earlier(self, run: _EarlierRun) -> None:
        for item, view in run.items:
            self._remove_item(item, view)
            self.getPlotItem().vb.thaw(item)
        self._backdrop_changed()

    def _rebuild_legend(self) -> None:
        """Rebuild the legend once the current burst of changes is over (a new run adds and retires
        several curves; rebuilding per curve cost ~30 ms of the GUI thread per run)."""
        if not self._legend_pending:
            self._legend_pending = True
            QtCore.QTimer.singleShot(0, self, self._flush_legend)

    @QtCore.Slot()
    def _flush_legend(self) -> None:
        if not self._legend_pending:
            return
        self._legend_pending = False
        # Curves of the main axis first, those of a second axis (learning rate) after.
        wanted = [(series.item, series.label)
                  for series in sorted(self._series.values(), key=lambda s: s.view is not None)]
        if self._marks_in_legend:
            wanted.append((self._marks_item, "non-finite (NaN/inf)"))
        wanted += [(run.legend_item, _elide(run.name, LEGEND_NAME_CHARS))
                   for run in reversed(self._earlier) if run.legend_item is not None]
        # Rows are reused: a new run mostly shifts the same entries down by one, and building an entry (a
        # sample and an HTML label) is what made rebuilding the legend cost ~9 ms with 5 earlier runs.
        rows = list(self._legend.items)
        for (sample, label), (item, text) in zip(rows, wanted):
            if sample.item is not item:
                sample.item = item
                sample.update()
            if label.text != text:
                label.setText(text)
        for sample, _label in rows[len(wanted):]:
            sample.item = _RemovedRow()  # matched by identity: only this row goes
            self._legend.removeItem(sample.item)
        for item, text in wanted[len(rows):]:
            self._legend.addItem(item, text)

    def _apply_palette(self) -> None:
        palette = self.palette()
        base = palette.color(QtGui.QPalette.ColorRole.Base)
        text = palette.color(QtGui.QPalette.ColorRole.Text)
        self.setBackground(base)
        plot_item = self.getPlotItem()
        for name in ("left", "bottom", "right"):
            axis = plot_item.getAxis(name)
            axis.setPen(text)
            axis.setTextPen(text)
        self._legend.setLabelTextColor(text)
        for run in getattr(self, "_earlier", ()):
            for item, _view in run.items:
                self._paint_faded(item)
        if hasattr(self, "_earlier"):
            self._backdrop_changed()

    def changeEvent(self, event: QtCore.QEvent) -> None:
        if event.type() == QtCore.QEvent.Type.PaletteChange and hasattr(self, "_legend"):
            self._apply_palette()
        super().changeEvent(event)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self._stop_live()
        _reserve_pixmaps(self, 0)
        super().closeEvent(event)

    def _stop_live(self) -> None:
        self._live_flag.live = False
        scheduler().remove(self)

    def _on_view_x_range_changed(self, *_args) -> None:
        # Zooming changes which pyramid level fits; re-level once the view has settled.
        if not self._relevel_pending:
            self._relevel_pending = True
            QtCore.QTimer.singleShot(0, self, self._on_relevel_timeout)

    @QtCore.Slot()
    def _on_relevel_timeout(self) -> None:
        self._relevel_pending = False
        view = self._view_state()
        if view is not None:
            for series in self._series.values():
                series.push(*view, level_changes_only=True)


class LossPlotWidget(_RunPlotWidget):
    """Step loss (raw and optionally smoothed) and per-epoch train/validation loss."""

    def __init__(self, parent=None, objectName: str | None = None):
        super().__init__(parent, objectName, x_label="step", y_label="loss")
        self._alpha: float | None = None
        self._ema_state: float | None = None
        self._on_current_run_cleared()

    def _on_current_run_cleared(self) -> None:
        self._ema_state = None
        self._add_series("steps", "step loss", color=PALETTE[0], width=1, alpha=90, z=-1,
                         antialias=False, legend_rank=2, dash_when_faded=False, decimate=True)
        if self._alpha is not None:
            self._add_smoothed()
        self._add_series("train", "train loss (epoch)", color=PALETTE[1], width=2,
                         symbol="o", z=2, legend_rank=1)
        self._add_series("val", "val loss (epoch)", color=PALETTE[2], width=2,
                         symbol="s", z=2, legend_rank=3)
        self._order_series()

    def _add_smoothed(self) -> None:
        self._add_series("smoothed", "step loss (smoothed)", color=PALETTE[0], width=2,
                         track_nonfinite=False, z=1, antialias=False, legend_rank=0,
                         decimate=True)
        # From the steps kept at full resolution: in a run longer than plots.RECENT_POINTS, a smoothing
        # switched on later starts there (the raw curve's older envelope stays drawn).
        raw = self._series["steps"].buffer
        if len(raw):
            smoothed = smooth_ema(raw.y, self._alpha)
            self._series["smoothed"].extend(raw.x, smoothed)
            self._ema_state = _last_finite(smoothed, None)

    def _order_series(self) -> None:
        order = ("steps", "smoothed", "train", "val")
        self._series = {k: self._series[k] for k in order if k in self._series}
        self._rebuild_legend()

    @property
    def step_curve(self) -> pg.PlotDataItem:
        return self._series["steps"].item

    @property
    def smoothed_curve(self) -> pg.PlotDataItem | None:
        return self.curve("smoothed")

    @property
    def train_curve(self) -> pg.PlotDataItem:
        return self._series["train"].item

    @property
    def val_curve(self) -> pg.PlotDataItem:
        return self._series["val"].item

    @property
    def smoothing(self) -> float | None:
        return self._alpha

    def set_smoothing(self, alpha: float | None) -> None:
        """EMA weight of each new step (0 < alpha <= 1), or None for no smoothed curve."""
        check_smoothing(alpha)
        self._remove_series("smoothed")
        self._alpha = alpha
        self._ema_state = None
        if alpha is not None:
            self._add_smoothed()
            self._order_series()
        self.redraw()

    def set_log_y(self, on: bool) -> None:
        self.getPlotItem().vb.forget_frozen()  # earlier runs' bounds change with the scale
        self.getPlotItem().setLogMode(y=bool(on))

    def add_steps(self, steps: Sequence[int], losses: Sequence[float]) -> None:
        steps = np.asarray(steps, dtype=np.float64).ravel()
        losses = np.asarray(losses, dtype=np.float64).ravel()
        if steps.shape != losses.shape:
            raise ValueError(
                f"add_steps needs one loss per step, got {steps.size} steps and {losses.size} losses"
            )
        self._extend("steps", steps, losses)
        if self._alpha is not None:
            smoothed = smooth_ema(losses, self._alpha, self._ema_state)
            self._extend("smoothed", steps, smoothed)
            self._ema_state = _last_finite(smoothed, self._ema_state)

    def add_epoch(self, step: int, train_loss: float, val_loss: float | None = None) -> None:
        self.add_epochs([step], [train_loss], [val_loss])

    def add_epochs(self, steps: Sequence[int], train_losses: Sequence[float],
                   val_losses: Sequence[float | None]) -> None:
        """Several epochs' losses at once, at the step each ended on (a validation loss may be None)."""
        if not len(steps) == len(train_losses) == len(val_losses):
            raise ValueError(f"add_epochs needs a train and a validation loss per step, got {len(steps)} steps, "
                             f"{len(train_losses)} train and {len(val_losses)} validation losses")
        self._extend("train", steps, train_losses)
        val = [(step, loss) for step, loss in zip(steps, val_losses) if loss is not None]
        if val:
            self._extend("val", *zip(*val))


#: Narrowest y span of the [0, 1] scores' axis: a nearly constant accuracy is not blown up into float noise.
MIN_SCORE_SPAN = 0.01
#: Narrowest y span of another axis (errors, gradient norm), relative to the largest value shown.
MIN_RELATIVE_SPAN = 0.01
GRAD_NORM_KEY = "grad_norm"
GRAD_NORM_COLOR = "#8c564b"


class MetricsPlotWidget(_RunPlotWidget):
    """Per-epoch metric curves, one per metric name, and the learning rate on a right axis.

    Scores in [0, 1] (accuracy, f1, auroc, r2, ...) share the left axis; every other kind of value gets an
    axis of its own right of the learning rate's, added with its first value (errors in the target's units
    such as rmse and mae; the gradient norm), so an r2 of 0.8 is not a flat line beside an rmse of 15,000.
    No axis zooms below a sensible span.
    """

    _LEGEND_COLUMN = 9  # right of the extra axes (columns 3-8); empty columns take no room
    _EXTRA_COLUMNS = range(3, 9)

    def __init__(self, parent=None, objectName: str | None = None):
        super().__init__(parent, objectName, x_label="epoch", y_label="score (0–1)")
        self.getPlotItem().getAxis("left").enableAutoSIPrefix(False)  # 0.95, not "950 (x0.001)"
        self.getPlotItem().vb.setLimits(minYRange=MIN_SCORE_SPAN)
        self._extra: dict[str, tuple[pg.ViewBox, pg.AxisItem, int]] = {}  # group -> view, axis, column
        self._extra_max: dict[str, float] = {}
        self._colors: dict[str, str] = {}
        self._lr_max = 0.0
        plot_item = self.getPlotItem()
        self._lr_view = pg.ViewBox(enableMenu=False)
        self._watch_backdrop(self._lr_view)
        plot_item.showAxis("right")
        plot_item.scene().addItem(self._lr_view)
        right = plot_item.getAxis("right")
        right.linkToView(self._lr_view)
        right.setLabel("learning rate")
        self._lr_view.setXLink(plot_item)
        plot_item.vb.sigResized.connect(self._on_view_resized)
        self._on_current_run_cleared()
        self._on_view_resized()

    @property
    def lr_view(self) -> pg.ViewBox:
        return self._lr_view

    @property
    def lr_axis(self) -> pg.AxisItem:
        return self.getPlotItem().getAxis("right")

    def metric_names(self) -> list[str]:
        return [k.removeprefix("metric:") for k in self._series if k.startswith("metric:")]

    def metric_curve(self, name: str) -> pg.PlotDataItem | None:
        return self.curve(f"metric:{name}")

    @property
    def curves(self) -> dict[str, pg.PlotDataItem]:
        """The current run's metric curves by metric name."""
        return {name: self.metric_curve(name) for name in self.metric_names()}

    @property
    def lr_curve(self) -> pg.PlotDataItem:
        return self._series["lr"].item

    def _on_current_run_cleared(self) -> None:
        self._add_series("lr", "learning rate", color="#7a7a7a", width=1.5, view=self._lr_view,
                         track_nonfinite=False, z=-1, legend_rank=1, decimate=True)

    @property
    def error_view(self) -> pg.ViewBox | None:
        """The errors' view (rmse, mae in the target's units); None until an error metric arrives."""
        return self._extra["error"][0] if "error" in self._extra else None

    @property
    def error_axis(self) -> pg.AxisItem | None:
        return self._extra["error"][1] if "error" in self._extra else None

    def extra_view(self, group: str) -> pg.ViewBox | None:
        return self._extra[group][0] if group in self._extra else None

    def _axis_view(self, group: str, label: str) -> pg.ViewBox:
        """The view of one kind of value with its own right axis, made with the first value of that kind."""
        if group not in self._extra:
            plot_item = self.getPlotItem()
            view = pg.ViewBox(enableMenu=False)
            self._watch_backdrop(view)
            plot_item.scene().addItem(view)
            axis = pg.AxisItem("right")
            axis.setLabel(label)
            axis.setStyle(maxTickLevel=1)
            axis.enableAutoSIPrefix(False)
            axis.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            used = {column for _, _, column in self._extra.values()}
            column = next(c for c in self._EXTRA_COLUMNS if c not in used)
            plot_item.layout.addItem(axis, 2, column)
            axis.linkToView(view)
            view.setXLink(plot_item)
            self._extra[group] = (view, axis, column)
            self._on_view_resized()
        return self._extra[group][0]

    def add_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.add_epochs([epoch], [metrics])

    def add_epochs(self, epochs: Sequence[int], metrics: Sequence[Mapping[str, float]]) -> None:
        """Several epochs' metrics at once (an epoch may lack a metric the others have)."""
        if len(epochs) != len(metrics):
            raise ValueError(f"add_epochs needs the metrics of each epoch, got {len(epochs)} epochs "
                             f"and {len(metrics)} sets of metrics")
        from nnstudio.core.training.metrics import in_unit_interval

        for name in dict.fromkeys(name for values in metrics for name in values):
            key = f"metric:{name}"
            score = in_unit_interval(name)
            if key not in self._series:
                color = self._colors.setdefault(name, PALETTE[len(self._colors) % len(PALETTE)])
                self._add_series(key, name, color=color, width=2, symbol="o", z=2,
                                 view=None if score else self._axis_view("error", "error (target units)"))
            points = [(epoch, values[name]) for epoch, values in zip(epochs, metrics) if name in values]
            self._extend(key, *zip(*points))
            if not score:
                self._widen_span("error", [y for _, y in points])

    def start_run(self, name: str, context: Hashable | None = None) -> None:
        super().start_run(name, context)
        for group, (view, _axis, _column) in list(self._extra.items()):
            if not view.addedItems:
                self._remove_extra(group)  # runs of another task left: no empty axis stays beside the plot

    def _settle_view(self) -> None:
        super()._settle_view()
        if not self.isVisible():
            return
        for view, _axis, _column in self._extra.values():
            for _ in range(SETTLE_ROUNDS):  # as the main view: ranged now, so the next paint is the only one
                view.prepareForPaint()
                if not getattr(view, "_autoRangeNeedsUpdate", False):
                    break

    def _remove_extra(self, group: str) -> None:
        view, axis, _column = self._extra.pop(group)
        self._extra_max.pop(group, None)
        self.getPlotItem().layout.removeItem(axis)
        for item in (axis, view):
            if item.scene() is not None:
                item.scene().removeItem(item)

    def _widen_span(self, group: str, values: Sequence[float]) -> None:
        """The view of ``group`` never spans less than MIN_RELATIVE_SPAN of its largest value."""
        finite = [abs(v) for v in values if math.isfinite(v)]
        if finite and max(finite) > self._extra_max.get(group, 0.0):
            self._extra_max[group] = max(finite)
            self._extra[group][0].setLimits(minYRange=MIN_RELATIVE_SPAN * self._extra_max[group])

    @property
    def grad_norm_curve(self) -> pg.PlotDataItem | None:
        return self.curve(GRAD_NORM_KEY)

    def add_grad_norms(self, epochs: Sequence[int], norms: Sequence[float | None]) -> None:
        """The gradient norm of each epoch (total L2 norm, EpochFinished.grad_norm), dashed, on an axis of its own.

        Epochs without a measure (None) are skipped; the series appears with the first value.
        """
        points = [(e, float(v)) for e, v in zip(epochs, norms) if v is not None]
        if not points:
            return
        if GRAD_NORM_KEY not in self._series:
            series = self._add_series(GRAD_NORM_KEY, "gradient norm", color=GRAD_NORM_COLOR, width=1.5, z=1,
                                      view=self._axis_view(GRAD_NORM_KEY, "gradient norm"))
            series.item.setPen(pg.mkPen(GRAD_NORM_COLOR, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        self._extend(GRAD_NORM_KEY, *zip(*points))
        self._widen_span(GRAD_NORM_KEY, [v for _, v in points])

    def add_lr(self, epoch: float, lr: float) -> None:
        """Learning rate at ``epoch`` (fractional epochs plot per-step rates)."""
        self.add_lrs([epoch], [lr])

    def add_lrs(self, epochs: Sequence[float], lrs: Sequence[float]) -> None:
        self._extend("lr", epochs, lrs)
        finite = [lr for lr in lrs if math.isfinite(lr)]
        if finite and max(finite) > self._lr_max:
            # From zero up: a constant rate reads as a flat line at its value, not as noise around it.
            self._lr_max = float(max(finite))
            self._lr_view.enableAutoRange(y=False)
            self._lr_view.setYRange(0.0, self._lr_max * 1.15, padding=0)

    @QtCore.Slot()
    def _on_view_resized(self) -> None:
        main = self.getPlotItem().vb
        for view in (self._lr_view, *(view for view, _, _ in self._extra.values())):
            view.setGeometry(main.sceneBoundingRect())
            view.linkedViewChanged(main, view.XAxis)


class _RemovedRow:
    """Stands in for the curve of a legend row being removed (LegendItem.removeItem finds rows by curve)."""


def _elide(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _last_finite(values: np.ndarray, default: float | None) -> float | None:
    finite = np.flatnonzero(np.isfinite(values))
    return float(values[finite[-1]]) if finite.size else default
