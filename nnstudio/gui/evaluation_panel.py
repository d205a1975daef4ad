"""The evaluation view: a metrics table per split, then the task's own figures from `core.results.evaluate`.

Classification: the confusion matrix (counts or shares by row), per-class precision/recall/F1/support and,
for binary tasks, ROC and precision-recall curves with a threshold slider that recomputes the matrix and
metrics live. Regression: predicted against actual, the residual histogram, the largest errors. Each view
exports its picture (PNG) and its numbers (CSV). The panel shows figures; it computes none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QBoxLayout, QCheckBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea,
    QSizePolicy, QSlider, QStackedWidget, QTableView, QVBoxLayout, QWidget)

from nnstudio.core.results.evaluate import Evaluation, confusion_rows, rows_to_csv
from nnstudio.gui.eval_plot import EvalPlot
from nnstudio.gui.rows_model import table_view

BLUE = (31, 119, 180)


def fit_height(view: QTableView, rows: int | None = None, most: int = 12) -> None:
    """As tall as its rows (at most `most`), so short tables leave no empty band."""
    view.resizeRowsToContents()
    n = min(view.model().rowCount() if rows is None else rows, most)
    row = view.verticalHeader().sectionSize(0) if view.model().rowCount() else view.verticalHeader().defaultSectionSize()
    bar = view.horizontalScrollBar().sizeHint().height()  # room for it when the box is narrow
    view.setFixedHeight(view.horizontalHeader().sizeHint().height() + max(n, 1) * row + 2 * view.frameWidth() + 2 + bar)


def fit_width(view: QTableView) -> None:
    """At least as wide as its columns sized to their contents, so every column (class, precision, recall, F1,
    support) shows at once; the tab scrolls sideways before a column is cut."""
    view.resizeColumnsToContents()
    header = view.horizontalHeader()
    view.setMinimumWidth(header.length() + 2 * view.frameWidth() + view.verticalScrollBar().sizeHint().width())


def plot_widget(name: str, x_label: str, y_label: str, unit_square: bool = False) -> pg.PlotWidget:
    plot = EvalPlot(unit_square)
    plot.setObjectName(name)
    plot.setMinimumSize(220, 200)
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    return plot


def export_widget_png(widget: QWidget, path: str | Path) -> Path:
    """The widget as it looks on screen, at its current size."""
    path = Path(path)
    if not widget.grab().save(str(path), "PNG"):
        raise OSError(f"{path}: could not write the PNG (is the folder writable?)")
    return path


class ConfusionMatrixWidget(pg.PlotWidget):
    """Counts (or shares of each actual class) in the cells; actual classes down, predicted across."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        self.setMinimumSize(280, 300)
        self.setMaximumHeight(340)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        item = self.getPlotItem()
        item.invertY(True)
        item.setLabel("bottom", "predicted")
        item.setLabel("left", "actual")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255), BLUE]))
        self.addItem(self.image)
        self.texts: list[pg.TextItem] = []
        self.values = np.zeros((0, 0))
        self.classes: list[str] = []

    def set_matrix(self, values: np.ndarray, classes: list[str], normalized: bool) -> None:
        self.values = np.asarray(values, dtype=float)
        self.classes = list(classes)
        k = len(classes)
        top = float(self.values.max()) if self.values.size and self.values.max() > 0 else 1.0
        self.image.setImage(self.values, levels=(0.0, top), autoLevels=False)
        self.image.setRect(0, 0, k, k)
        for text in self.texts:
            self.removeItem(text)
        self.texts = []
        for i in range(k):
            for j in range(k):
                v = self.values[i, j]
                label = f"{v:.2f}" if normalized else f"{int(round(v)):,}"
                text = pg.TextItem(label, color=(255, 255, 255) if v > 0.55 * top else (20, 20, 20), anchor=(0.5, 0.5))
                text.setPos(j + 0.5, i + 0.5)
                self.addItem(text)
                self.texts.append(text)
        ticks = [[(i + 0.5, c) for i, c in enumerate(classes)]]
        self.getAxis("bottom").setTicks(ticks)
        self.getAxis("left").setTicks(ticks)
        self.setRange(xRange=(0, k), yRange=(0, k), padding=0.02)

    def cell_texts(self) -> list[list[str]]:
        k = len(self.classes)
        return [[self.texts[i * k + j].toPlainText() for j in range(k)] for i in range(k)]


class EvaluationPanel(QWidget):
    """Shows an `Evaluation`; `threshold_kept` tells the window to save the slider's threshold with the model."""

    threshold_changed = Signal(float)
    threshold_kept = Signal(float)
    exported = Signal(str)
    export_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.evaluation: Evaluation | None = None
        self._exports: dict[str, tuple[QWidget, Callable[[], list[dict[str, Any]]]]] = {}
        self._pairs: list[QWidget] = []  # rows of two plots that stack on a narrow tab
        self._build()

    # ------------------------------------------------------------------------------------------ layout
    def _named(self, widget: Any, name: str) -> Any:
        widget.setObjectName(name)
        setattr(self, name, widget)
        return widget

    def _view_box(self, title: str, name: str, widget: QWidget, rows: Callable[[], list[dict[str, Any]]]) -> QGroupBox:
        box = QGroupBox(title)
        box.setObjectName(f"{name}Box")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(6, 6, 6, 6)
        if isinstance(widget, QTableView):  # short tables sit at the top of their box
            layout.addWidget(widget)
            layout.addStretch(1)
        else:
            layout.addWidget(widget, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        if isinstance(widget, EvalPlot):
            reset = self._named(QPushButton("Reset view"), f"{name}ResetView")
            reset.setToolTip("Back to the whole curve (Ctrl+wheel zooms, double-click resets too)")
            reset.setFlat(True)
            reset.clicked.connect(widget.reset_view)
            buttons.addWidget(reset)
        for kind in ("PNG", "CSV"):
            button = self._named(QPushButton(f"{kind}…"), f"{name}Export{kind.capitalize()}")
            button.setToolTip(f"Export this view as {kind}")
            button.setFlat(True)
            button.clicked.connect(self._on_export_clicked)
            button.setProperty("view", name)
            button.setProperty("kind", kind.lower())
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self._exports[name] = (box, rows)
        return box

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = self._scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        layout = QVBoxLayout(body)
        self._named(QLabel("Train a model, or open a checkpoint and a dataset with its columns, to evaluate it."),
                    "evaluationHeader").setWordWrap(True)
        layout.addWidget(self.evaluationHeader)
        self.metricsTable, self.metricsModel = table_view("metricsTable", self)
        fit_height(self.metricsTable, 3)
        layout.addWidget(self._view_box("Loss and metrics per split", "metrics", self.metricsTable,
                                        lambda: self.evaluation.metrics_rows() if self.evaluation else []))
        self.metricsTable.horizontalHeader().setStretchLastSection(False)
        self.pages = self._named(QStackedWidget(), "evaluationPages")
        layout.addWidget(self.pages)
        layout.addStretch(1)  # views keep their own height; the rest of a tall window stays empty
        self.pages.addWidget(QWidget())
        self.pages.addWidget(self._build_classification())
        self.pages.addWidget(self._build_regression())
        self.pages.currentChanged.connect(self._on_evaluationPages_currentChanged)
        self._on_evaluationPages_currentChanged(0)

    def _pair_row(self, name: str, first: QWidget, second: QWidget) -> QWidget:
        """Two views side by side where both fit the tab's width, else one under the other (`_fit_views`)."""
        row = self._named(QWidget(), name)
        layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(first, 1)
        layout.addWidget(second, 1)
        self._pairs.append(row)
        return row

    def _build_classification(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(0, 0, 0, 0)
        matrix_holder = QWidget()
        mv = QVBoxLayout(matrix_holder)
        mv.setContentsMargins(0, 0, 0, 0)
        self._named(ConfusionMatrixWidget(), "confusionMatrix")
        mv.addWidget(self.confusionMatrix, 1)
        self._named(QCheckBox("Normalise by row (share of each actual class)"), "normalizeCheck")
        self.normalizeCheck.toggled.connect(self._on_normalize_toggled)
        mv.addWidget(self.normalizeCheck)
        # the matrix and the per-class table side by side where both fit, else the table under the matrix
        self.confusionRow = self._named(QWidget(), "confusionRow")
        row = QBoxLayout(QBoxLayout.Direction.LeftToRight, self.confusionRow)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._view_box("Confusion matrix (test split)", "confusion", matrix_holder, self._confusion_rows),
                      1)
        self.perClassTable, self.perClassModel = table_view("perClassTable", self)
        row.addWidget(self._view_box("Per class (test split)", "perClass", self.perClassTable,
                                     lambda: self.evaluation.report.per_class_rows() if self._report() else []))
        grid.addWidget(self.confusionRow, 0, 0, 1, 2)
        self.binaryBox = self._named(QWidget(), "binaryBox")
        bl = QGridLayout(self.binaryBox)
        bl.setContentsMargins(0, 0, 0, 0)
        self._named(plot_widget("rocPlot", "false positive rate", "true positive rate", unit_square=True), "rocPlot")
        self._named(plot_widget("prPlot", "recall", "precision", unit_square=True), "prPlot")
        for plot in (self.rocPlot, self.prPlot):
            plot.setMinimumHeight(260)
            plot.setMaximumHeight(320)
            plot.setXRange(0, 1, padding=0.02)
            plot.setYRange(0, 1, padding=0.02)
        self.rocCurve = self.rocPlot.plot(pen=pg.mkPen(BLUE, width=2))
        self.rocPlot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
        self.prCurve = self.prPlot.plot(pen=pg.mkPen(BLUE, width=2))
        self.rocMarker = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(214, 39, 40), pen=pg.mkPen("w"))
        self.prMarker = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(214, 39, 40), pen=pg.mkPen("w"))
        self.rocPlot.addItem(self.rocMarker)
        self.prPlot.addItem(self.prMarker)
        bl.addWidget(self._pair_row("curvesRow", self._view_box("ROC curve", "roc", self.rocPlot, self._roc_rows),
                                    self._view_box("Precision-recall curve", "pr", self.prPlot, self._pr_rows)),
                     2, 0, 1, 2)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("Decision threshold"))
        self._named(QSlider(Qt.Orientation.Horizontal), "thresholdSlider")
        self.thresholdSlider.setRange(0, 100)
        self.thresholdSlider.setValue(50)
        self.thresholdSlider.setToolTip("A row is predicted as the second class when its probability is above this")
        self.thresholdSlider.valueChanged.connect(self._on_threshold_slider_value_changed)
        slider_row.addWidget(self.thresholdSlider, 1)
        self._named(QLabel("0.50"), "thresholdLabel")
        slider_row.addWidget(self.thresholdLabel)
        self._named(QPushButton("Keep for predictions"), "keepThresholdButton")
        self.keepThresholdButton.setToolTip("Predictions use this threshold; Save checkpoint stores it in the file")
        self.keepThresholdButton.clicked.connect(self._on_keep_threshold_clicked)
        slider_row.addWidget(self.keepThresholdButton)
        bl.addLayout(slider_row, 0, 0, 1, 2)
        self._named(QLabel(""), "thresholdMetrics")
        self.thresholdMetrics.setWordWrap(True)
        bl.addWidget(self.thresholdMetrics, 1, 0, 1, 2)
        grid.addWidget(self.binaryBox, 1, 0, 1, 2)
        from nnstudio.gui.image_grid import MisclassifiedGrid

        self.misclassifiedGrid = MisclassifiedGrid()
        self.misclassifiedGrid.setMinimumHeight(260)
        self._misclassified: list[dict[str, Any]] = []
        self.misclassifiedBox = self._view_box("Misclassified: true → predicted (probability)",
                                               "misclassified", self.misclassifiedGrid, lambda: self._misclassified)
        grid.addWidget(self.misclassifiedBox, 2, 0, 1, 2)
        self.misclassifiedBox.setVisible(False)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        return page

    def _build_regression(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(0, 0, 0, 0)
        self._named(plot_widget("predictedVsActual", "actual", "predicted"), "predictedVsActual")
        self.predictedVsActual.setMinimumHeight(300)
        self.predictedVsActual.setMaximumHeight(380)
        self.scatter = pg.ScatterPlotItem(size=6, brush=pg.mkBrush(*BLUE, 150), pen=None)
        self.identityLine = pg.PlotDataItem(pen=pg.mkPen((214, 39, 40), width=1.5, style=Qt.PenStyle.DashLine))
        self.predictedVsActual.addItem(self.scatter)
        self.predictedVsActual.addItem(self.identityLine)
        scatter_box = self._view_box("Predicted against actual (test split)", "scatter", self.predictedVsActual,
                                     self._scatter_rows)
        self._named(plot_widget("residualHistogram", "residual (actual − predicted)", "rows"), "residualHistogram")
        self.residualHistogram.setMinimumHeight(300)
        self.residualHistogram.setMaximumHeight(380)
        self.residualBars = pg.BarGraphItem(x=[], height=[], width=1, brush=pg.mkBrush(*BLUE, 180))
        self.residualHistogram.addItem(self.residualBars)
        grid.addWidget(self._pair_row("regressionRow", scatter_box, self._view_box(
            "Residuals (test split)", "residuals", self.residualHistogram, self._residual_rows)), 0, 0, 1, 2)
        self.largestErrorsTable, self.largestErrorsModel = table_view("largestErrorsTable", self)
        self.largestErrorsTable.setMinimumHeight(260)
        grid.addWidget(self._view_box("Largest errors (test split)", "largestErrors", self.largestErrorsTable,
                                      lambda: self._largest_rows), 1, 0, 1, 2)
        self._largest_rows: list[dict[str, Any]] = []
        return page

    # ------------------------------------------------------------------------------------------ showing
    def clear(self) -> None:
        self.evaluation = None
        self.metricsModel.set_rows([])
        self.pages.setCurrentIndex(0)
        self.evaluationHeader.setText("Train a model, or open a checkpoint and a dataset with its columns, to evaluate it.")

    def show_evaluation(self, evaluation: Evaluation, title: str = "", test_X: Any = None,
                        test_files: list[Path] | None = None) -> None:
        """`test_files`: an image model's test images, in the test split's order (shows the misclassified ones)."""
        self.evaluation = evaluation
        sizes = evaluation.sizes
        self.evaluationHeader.setText(
            (f"{title} · " if title else "") + f"{evaluation.task} · "
            + " · ".join(f"{n} {sizes.get(k, 0):,} {'rows' if test_files is None else 'images'}" for k, n in (("train", "train"), ("val", "validation"),
                                                                       ("test", "test"))))
        self.metricsModel.set_rows(evaluation.metrics_rows())
        fit_height(self.metricsTable)
        if evaluation.task == "regression":
            self.pages.setCurrentIndex(2)
            self._show_regression(evaluation, test_X)
            self._fit_views()
            return
        self.pages.setCurrentIndex(1)
        binary = evaluation.task == "binary"
        self.binaryBox.setVisible(binary)
        if binary:
            curves = evaluation.curves
            if curves is not None:
                self.rocCurve.setData(curves.fpr, curves.tpr)
                self.prCurve.setData(curves.recall, curves.precision)
                self.rocPlot.setTitle(f"AUC {curves.auroc:.3f}")
                self.prPlot.setTitle(f"average precision {curves.average_precision:.3f}")
            else:
                self.rocCurve.setData([], [])
                self.prCurve.setData([], [])
                self.rocPlot.setTitle("the test split holds one class: no curve")
                self.prPlot.setTitle("")
            self.thresholdSlider.blockSignals(True)
            self.thresholdSlider.setValue(int(round(evaluation.threshold * 100)))
            self.thresholdSlider.blockSignals(False)
        self._show_report()
        self._show_misclassified(test_files)

    def _show_misclassified(self, files: list[Path] | None) -> None:
        self.misclassifiedBox.setVisible(files is not None)
        self._misclassified = []
        if files is None:
            self.misclassifiedGrid.thumbnailList.clear()
            return
        true, predicted, probability = self.evaluation.test_predictions()
        self.misclassifiedGrid.show_errors(files, true, predicted, probability)
        self._misclassified = [{"file": str(f), "true": t, "predicted": q, "probability": p}
                               for f, t, q, p in zip(files, true, predicted, probability) if t != q]

    def _on_evaluationPages_currentChanged(self, index: int) -> None:
        """Only the page shown counts for the tab's size: a stack is as wide as its widest page otherwise (the
        regression plots side by side would make a classification scroll sideways)."""
        for i in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.pages.widget(i).setSizePolicy(policy, policy)
        self.pages.updateGeometry()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_views()

    def _fit_views(self) -> None:
        """No sideways scrolling: the per-class table goes beside the matrix when both fit the tab's width
        (a scroll bar's width kept free), else under it; a table wider than the tab even then scrolls inside
        its own box (every column stays whole, the class names may need the scroll). Pairs of plots likewise."""
        row = self.confusionRow.layout()
        body = self._scroll.widget().layout().contentsMargins()
        available = (self._scroll.width() - self._scroll.verticalScrollBar().sizeHint().width()
                     - body.left() - body.right())
        matrix_box, table_box = self._exports["confusion"][0], self._exports["perClass"][0]
        box = table_box.layout().contentsMargins()
        table = self.perClassTable
        table.setMinimumWidth(0)
        fit_width(table)
        wanted = table.minimumWidth()
        side = matrix_box.minimumSizeHint().width() + row.spacing() + wanted + box.left() + box.right()
        direction = QBoxLayout.Direction.LeftToRight if side <= available else QBoxLayout.Direction.TopToBottom
        if row.direction() != direction:
            row.setDirection(direction)
        if direction == QBoxLayout.Direction.TopToBottom:
            table.setMinimumWidth(max(0, min(wanted, available - box.left() - box.right())))
        for pair in self._pairs:  # two plots (ROC and precision-recall; predicted and residuals)
            layout = pair.layout()
            views = [layout.itemAt(i).widget() for i in range(layout.count())]
            side = sum(v.minimumSizeHint().width() for v in views) + layout.spacing()
            direction = QBoxLayout.Direction.LeftToRight if side <= available else QBoxLayout.Direction.TopToBottom
            if layout.direction() != direction:
                layout.setDirection(direction)

    def _report(self):
        return self.evaluation.report if self.evaluation is not None else None

    def _show_report(self) -> None:
        report = self._report()
        if report is None:
            return
        matrix = report.confusion_normalized() if self.normalizeCheck.isChecked() else report.confusion
        self.confusionMatrix.set_matrix(matrix, report.classes, self.normalizeCheck.isChecked())
        self.perClassModel.set_rows(report.per_class_rows())
        fit_height(self.perClassTable)
        fit_width(self.perClassTable)
        self._fit_views()
        if report.threshold is not None:
            t = report.threshold
            self.thresholdLabel.setText(f"{t:.2f}")
            k = report.confusion
            tn, fp, fn, tp = int(k[0, 0]), int(k[0, 1]), int(k[1, 0]), int(k[1, 1])
            figures = "  ".join(f"{n} {v:.4g}" for n, v in report.metrics.items())
            self.thresholdMetrics.setText(
                f"test split at threshold {t:.2f}: {figures} · precision {report.precision[1]:.3f} · "
                f"recall {report.recall[1]:.3f} ('{report.classes[1]}') · TP {tp}  FP {fp}  FN {fn}  TN {tn}")
            self._place_markers(t)

    def _place_markers(self, t: float) -> None:
        curves = self.evaluation.curves if self.evaluation is not None else None
        if curves is None:
            self.rocMarker.setData([], [])
            self.prMarker.setData([], [])
            return
        report = self._report()  # the point of "probability > t" on each curve, from the matrix at t
        tpr = report.recall[1]
        negatives = report.confusion[0].sum()
        fpr = report.confusion[0, 1] / negatives if negatives else 0.0
        self.rocMarker.setData([fpr], [tpr])
        self.prMarker.setData([report.recall[1]], [report.precision[1]])

    def _show_regression(self, evaluation: Evaluation, test_X: Any) -> None:
        pred, actual = evaluation.predicted_actual()
        self.scatter.setData(actual, pred)
        lo = float(min(actual.min(), pred.min())) if len(actual) else 0.0
        hi = float(max(actual.max(), pred.max())) if len(actual) else 1.0
        self.identityLine.setData([lo, hi], [lo, hi])
        residuals = evaluation.residuals()
        counts, edges = np.histogram(residuals, bins=min(40, max(5, int(np.sqrt(len(residuals))))))
        self._histogram = (counts, edges)
        self.residualBars.setOpts(x=(edges[:-1] + edges[1:]) / 2, height=counts, width=float(edges[1] - edges[0]))
        rows = evaluation.largest_errors(20)
        if test_X is not None and rows:
            features = evaluation.test_features([r["test_row"] for r in rows], test_X)
            rows = [{**r, **f} for r, f in zip(rows, features)]
        self._largest_rows = rows
        self.largestErrorsModel.set_rows(rows)

    # ------------------------------------------------------------------------------------------ rows for CSV
    def _confusion_rows(self) -> list[dict[str, Any]]:
        report = self._report()
        return confusion_rows(report, self.normalizeCheck.isChecked()) if report else []

    def _roc_rows(self) -> list[dict[str, Any]]:
        c = self.evaluation.curves if self.evaluation else None
        return [] if c is None else [{"threshold": float(t), "false_positive_rate": float(f), "true_positive_rate": float(p)}
                                     for t, f, p in zip(c.roc_thresholds, c.fpr, c.tpr)]

    def _pr_rows(self) -> list[dict[str, Any]]:
        c = self.evaluation.curves if self.evaluation else None
        if c is None:
            return []
        thresholds = list(c.pr_thresholds) + [None] * (len(c.precision) - len(c.pr_thresholds))
        return [{"threshold": None if t is None else float(t), "precision": float(p), "recall": float(r)}
                for t, p, r in zip(thresholds, c.precision, c.recall)]

    def _scatter_rows(self) -> list[dict[str, Any]]:
        if self.evaluation is None or self.evaluation.task != "regression":
            return []
        pred, actual = self.evaluation.predicted_actual()
        return [{"test_row": i, "actual": float(a), "predicted": float(p)} for i, (a, p) in enumerate(zip(actual, pred))]

    def _residual_rows(self) -> list[dict[str, Any]]:
        counts, edges = getattr(self, "_histogram", (np.array([]), np.array([0.0])))
        return [{"from": float(edges[i]), "to": float(edges[i + 1]), "rows": int(c)} for i, c in enumerate(counts)]

    # ------------------------------------------------------------------------------------------ export
    def view_names(self) -> list[str]:
        return list(self._exports)

    def export_png(self, view: str, path: str | Path) -> Path:
        return export_widget_png(self._exports[view][0], path)

    def export_csv(self, view: str, path: str | Path) -> Path:
        rows_to_csv(self._exports[view][1](), path)
        return Path(path)

    def _on_export_clicked(self) -> None:
        button = self.sender()
        view, kind = button.property("view"), button.property("kind")
        if self.evaluation is None:
            self.export_failed.emit("Nothing to export yet: evaluate a model first.")
            return
        filters = "PNG images (*.png)" if kind == "png" else "CSV files (*.csv)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {view}", f"{view}.{kind}", filters)
        if not path:
            return
        try:
            (self.export_png if kind == "png" else self.export_csv)(view, path)
        except OSError as exc:
            self.export_failed.emit(f"{path}: could not export ({exc.strerror or exc})")
            return
        self.exported.emit(path)

    # ------------------------------------------------------------------------------------------ slots
    def _on_normalize_toggled(self, checked: bool) -> None:
        self._show_report()

    def _on_threshold_slider_value_changed(self, value: int) -> None:
        if self.evaluation is None or self.evaluation.task != "binary":
            return
        self.evaluation.at_threshold(value / 100)
        self._show_report()
        self.threshold_changed.emit(value / 100)

    def _on_keep_threshold_clicked(self) -> None:
        if self.evaluation is not None and self.evaluation.task == "binary":
            self.threshold_kept.emit(self.evaluation.threshold)

    def threshold(self) -> float:
        return self.thresholdSlider.value() / 100
