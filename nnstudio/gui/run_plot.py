"""What the loss plot and the metrics plot share: the current run's series, earlier runs faded behind, the live
redraw timer, paint holding and PNG export (`_RunPlotWidget`, pyqtgraph's PlotWidget underneath)."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Hashable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from nnstudio.gui.curve_data import (
    DOWNSAMPLE_PER_PIXEL,
    EARLIER_DASHES,
    LEGEND_NAME_CHARS,
    MAX_EARLIER_RUNS,
    NONFINITE_COLOR,
)
from nnstudio.gui.plot_items import (
    LEGEND_BELOW_WIDTH,
    MODERATE_VALUES,
    PAINT_LATER_MS,
    SETTLE_ROUNDS,
    _Curve,
    _EarlierRun,
    _elide,
    _Fade,
    _faded,
    _LiveFlag,
    _over,
    _PlotViewBox,
    _RemovedRow,
    _reserve_pixmaps,
    _Series,
)
from nnstudio.gui.redraw import scheduler


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
