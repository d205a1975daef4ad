"""The pyqtgraph side of the live training plots (see `nnstudio.gui.plots`).

Importing this module imports pyqtgraph (about a quarter of a second, most of it PySide6 setting up
every Qt class pyqtgraph copies), so the window does not: `plots.LossPlot` and `plots.MetricsPlot`
create these widgets once they are shown, after pyqtgraph has been imported off the GUI thread.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from nnstudio.gui.curve_data import (
    PALETTE, check_smoothing,
    smooth_ema)
from nnstudio.gui.plot_items import SETTLE_ROUNDS, _last_finite
from nnstudio.gui.run_plot import _RunPlotWidget

__all__ = ["LossPlotWidget", "MetricsPlotWidget"]


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


