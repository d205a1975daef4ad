"""The pieces the run plots are drawn with: a curve and its series (buffer, pyramid, smoothing pushed to it), the
view box that keeps its ranges stable, earlier runs faded behind, and the small colour and text helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from nnstudio.gui.curve_data import FROZEN_MAX_BLOCKS, MIN_BLOCKS_PER_PIXEL, RECENT_POINTS, CurveBuffer, PeakPyramid

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


class _RemovedRow:
    """Stands in for the curve of a legend row being removed (LegendItem.removeItem finds rows by curve)."""


def _elide(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _last_finite(values: np.ndarray, default: float | None) -> float | None:
    finite = np.flatnonzero(np.isfinite(values))
    return float(values[finite[-1]]) if finite.size else default
