"""The Experiments tab: a search space from the current settings, a sweep in a worker thread, its trials live.

The worker runs `core.experiments.study.run_study` (the CLI's loop) in a QThread; it emits one plain dict
per finished trial, received by the panel's slots in the GUI thread (DESIGN.md, the bridge).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    Qt,
    QThread,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("number", "state", "value", "seconds")


def candidate_params(cfg) -> list[tuple[str, float, float, bool]]:
    """Config keys worth searching in `cfg`: (dotted key, low, high, log)."""
    out = [("training.optimizer.lr", 1e-4, 1e-1, True), ("training.batch_size", 16.0, 256.0, False)]
    for i, layer in enumerate(cfg.layers):
        if layer.get("type") == "Linear" and layer.get("out_features") != "auto":
            out.append((f"model.layers.{i}.out_features", 16.0, 256.0, False))
        if layer.get("type") == "Dropout":
            out.append((f"model.layers.{i}.p", 0.0, 0.5, False))
    return out


class TrialsModel(QAbstractTableModel):
    """The study's trials: number, state, value, seconds, then one column per searched key (sortable)."""

    def __init__(self, params: list[str] | None = None):
        super().__init__()
        self.params = list(params or [])
        self.rows: list[dict[str, Any]] = []

    def reset(self, params: list[str]) -> None:
        self.beginResetModel()
        self.params, self.rows = list(params), []
        self.endResetModel()

    def add(self, row: dict[str, Any]) -> None:
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows))
        self.rows.append(row)
        self.endInsertRows()

    def rowCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(COLUMNS) + len(self.params)

    def _raw(self, row: dict[str, Any], col: int) -> Any:
        return row.get(COLUMNS[col]) if col < len(COLUMNS) else row["params"].get(self.params[col - len(COLUMNS)])

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        value = self._raw(self.rows[index.row()], index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return "-" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
        if role == Qt.ItemDataRole.UserRole:
            return value
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        return COLUMNS[section] if section < len(COLUMNS) else self.params[section - len(COLUMNS)]

    def sort(self, column, order=Qt.SortOrder.AscendingOrder):
        self.layoutAboutToBeChanged.emit()
        present = [r for r in self.rows if self._raw(r, column) is not None]
        missing = [r for r in self.rows if self._raw(r, column) is None]
        present.sort(key=lambda r: (str(type(self._raw(r, column))), self._raw(r, column)),
                     reverse=order == Qt.SortOrder.DescendingOrder)
        self.rows = present + missing
        self.layoutChanged.emit()


class SweepWorker(QObject):
    """Runs a study in its thread; `stop` (an Event) is its only handle from outside."""

    trial_finished = Signal(dict)
    finished = Signal(str)  # "" when it ran to the end, else the reason it stopped

    def __init__(self, sweep):
        super().__init__()
        self.sweep = sweep
        self.stop = threading.Event()
        self._runs: list = []

    def request_stop(self) -> None:
        self.stop.set()
        for run in self._runs[-1:]:
            run.trainer.request_stop()

    def run(self) -> None:
        from nnstudio.core.experiments.study import run_study

        def on_trial(o) -> None:
            self.trial_finished.emit({"number": o.number, "state": o.state, "value": o.value,
                                      "seconds": round(o.seconds, 2), "params": dict(o.params),
                                      "run_dir": o.run_dir})

        message = ""
        try:
            run_study(self.sweep, stop=self.stop, on_trial=on_trial, on_run=self._runs.append)
        except Exception as exc:  # noqa: BLE001 - one sentence in the panel; the window stays as it was
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.finished.emit(message)


def _number(value: Any, param) -> float:
    """A parameter's value as a position on its axis (choices by their index)."""
    if param.choices is not None:
        return float(param.choices.index(value)) if value in param.choices else 0.0
    return float(value)


class CVWorker(QObject):
    """k-fold cross-validation of one config in its thread; emits the plain result dict."""

    finished = Signal(dict, str)

    def __init__(self, cfg, folds: int):
        super().__init__()
        self.cfg, self.folds = cfg, folds

    def request_stop(self) -> None:
        pass  # the folds are short; closing waits for the fold being trained

    def run(self) -> None:
        from nnstudio.core.experiments.cv import cross_validate

        result, message = {}, ""
        try:
            self.cfg.output.checkpoint = ""
            result = cross_validate(self.cfg, self.folds).to_json()
        except Exception as exc:  # noqa: BLE001 - one sentence in the panel
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.finished.emit(result, message)


def _follow_palette(plot, palette) -> None:
    """The window's colours, as the training plots have them (pyqtgraph's default is black)."""
    from PySide6.QtGui import QPalette

    base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
    plot.setBackground(base)
    item = plot.getPlotItem()
    for name in ("left", "bottom"):
        item.getAxis(name).setPen(text)
        item.getAxis(name).setTextPen(text)
    item.titleLabel.setAttr("color", text.name())


class ExperimentsPanel(QWidget):
    """Pick parameters and ranges, start/stop a sweep, watch its trials and the best so far."""

    sweep_finished = Signal(str)
    best_applied = Signal(dict)
    model_opened = Signal(str)  # a trial's checkpoint (best.pt in its run folder)
    cv_finished = Signal(str)

    def __init__(self, config: Callable[[], Any] | None = None, parent=None):
        super().__init__(parent)
        self._config = config
        self._thread: QThread | None = None
        self._worker: SweepWorker | None = None
        self.sweep = None
        self.spaceTable = QTableWidget(0, 4)
        self.spaceTable.setObjectName("spaceTable")
        self.spaceTable.setHorizontalHeaderLabels(["parameter", "low", "high", "log"])
        self.trialsSpin = QSpinBox()
        self.trialsSpin.setObjectName("trialsSpin")
        self.trialsSpin.setRange(1, 10000)
        self.trialsSpin.setValue(20)
        self.startButton = QPushButton("Start sweep")
        self.startButton.setObjectName("startButton")
        self.stopButton = QPushButton("Stop")
        self.stopButton.setObjectName("stopButton")
        self.stopButton.setEnabled(False)
        self.applyBestButton = QPushButton("Apply best")
        self.applyBestButton.setObjectName("applyBestButton")
        self.applyBestButton.setEnabled(False)
        self.statusLabel = QLabel("")
        self.statusLabel.setObjectName("statusLabel")
        self.trialsModel = TrialsModel()
        self.trialsView = QTableView()
        self.trialsView.setObjectName("trialsView")
        self.trialsView.setModel(self.trialsModel)
        self.trialsView.setSortingEnabled(True)
        self.trialsView.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        import pyqtgraph as pg

        self.valuePlot = pg.PlotWidget()
        self.valuePlot.setObjectName("valuePlot")
        self.valuePlot.setLabel("bottom", "trial")
        self.valueCurve = self.valuePlot.plot([], [], pen=None, symbol="o", symbolSize=6, name="trial")
        self.bestCurve = self.valuePlot.plot([], [], pen=pg.mkPen(width=2), name="best so far")
        self.openTrialButton = QPushButton("Open trial's model")
        self.openTrialButton.setObjectName("openTrialButton")
        self.foldsSpin = QSpinBox()
        self.foldsSpin.setObjectName("foldsSpin")
        self.foldsSpin.setRange(2, 50)
        self.foldsSpin.setValue(5)
        self.cvButton = QPushButton("Cross-validate")
        self.cvButton.setObjectName("cvButton")
        self.cvLabel = QLabel("")
        self.cvLabel.setObjectName("cvLabel")
        self.cvLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.importanceLabel = QLabel("")
        self.importanceLabel.setObjectName("importanceLabel")
        self.parallelPlot = pg.PlotWidget()
        self.parallelPlot.setObjectName("parallelPlot")
        self.parallelPlot.setTitle("parameters and metric")
        self.parallelPlot.setToolTip("Each line is a trial: its parameters scaled to their range, then its metric")
        self.parallel_lines: list = []
        controls = QHBoxLayout()  # two short rows: the tab must not widen the window (tests/gui/test_window_fit)
        for w in (QLabel("trials"), self.trialsSpin, self.startButton, self.stopButton):
            controls.addWidget(w)
        controls.addStretch(1)
        results = QHBoxLayout()
        for w in (self.applyBestButton, self.openTrialButton):
            results.addWidget(w)
        results.addStretch(1)
        folds = QHBoxLayout()  # a row of its own: at 1024 px the tab is about 380 px wide
        for w in (QLabel("folds"), self.foldsSpin, self.cvButton):
            folds.addWidget(w)
        folds.addStretch(1)
        self.statusLabel.setWordWrap(True)
        self.cvLabel.setWordWrap(True)
        self.importanceLabel.setWordWrap(True)
        header = self.spaceTable.horizontalHeader()  # the dotted config path is what a user reads first
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.spaceTable.setWordWrap(False)
        self.spaceTable.setTextElideMode(Qt.TextElideMode.ElideLeft)  # "…layers.0.out_features", not "model.lay…"
        for plot in (self.valuePlot, self.parallelPlot):
            _follow_palette(plot, self.palette())
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.spaceTable)
        split.addWidget(self.trialsView)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.valuePlot)
        plots.addWidget(self.parallelPlot)
        split.addWidget(plots)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(results)
        layout.addLayout(folds)
        layout.addWidget(self.statusLabel)
        layout.addWidget(split)
        layout.addWidget(self.importanceLabel)
        layout.addWidget(self.cvLabel)
        self.startButton.clicked.connect(self._on_startButton_clicked)
        self.stopButton.clicked.connect(self._on_stopButton_clicked)
        self.applyBestButton.clicked.connect(self._on_applyBestButton_clicked)
        self.openTrialButton.clicked.connect(self._on_openTrialButton_clicked)
        self.cvButton.clicked.connect(self._on_cvButton_clicked)
        self.refresh_space()

    # -- the search space
    def refresh_space(self) -> None:
        """Candidate parameters from the current model and training settings (the first two ticked)."""
        if self._config is None:
            return
        cfg = self._config()
        rows = candidate_params(cfg)
        self.spaceTable.setRowCount(len(rows))
        for r, (key, low, high, log) in enumerate(rows):
            item = QTableWidgetItem(key)
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked if r in (0, 2) else Qt.CheckState.Unchecked)
            self.spaceTable.setItem(r, 0, item)
            for c, v in ((1, low), (2, high)):
                spin = QDoubleSpinBox()
                spin.setDecimals(5)
                spin.setRange(0.0, 1e6)
                spin.setValue(v)
                self.spaceTable.setCellWidget(r, c, spin)
            box = QCheckBox()
            box.setChecked(log)
            self.spaceTable.setCellWidget(r, 3, box)

    def space(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in range(self.spaceTable.rowCount()):
            item = self.spaceTable.item(r, 0)
            if item.checkState() != Qt.CheckState.Checked:
                continue
            key = item.text()
            low, high = self.spaceTable.cellWidget(r, 1).value(), self.spaceTable.cellWidget(r, 2).value()
            if key.endswith(("out_features", "batch_size")):
                out[key] = {"low": int(low), "high": int(high)}
            else:
                out[key] = {"low": low, "high": high, "log": self.spaceTable.cellWidget(r, 3).isChecked()}
        return out

    def build_sweep(self):
        from nnstudio.core.experiments.space import parse_sweep

        cfg = self._config()
        raw = cfg.to_dict()
        metric = "val_loss" if getattr(cfg.data, "task", "") == "regression" else "val_accuracy"
        raw["sweep"] = {"trials": self.trialsSpin.value(), "metric": metric, "parameters": self.space(),
                        "study": f"{cfg.output.name}-window"}
        return parse_sweep(raw, cfg.base_dir, "Experiments")

    # -- running
    @property
    def running(self) -> bool:
        return self._thread is not None

    def _on_startButton_clicked(self) -> None:
        from nnstudio.core.errors import NNStudioError

        if self.running:
            return
        try:
            self.sweep = self.build_sweep()
        except NNStudioError as exc:
            self.statusLabel.setText(str(exc))
            return
        self.trialsModel.reset([p.path for p in self.sweep.params])
        self.valuePlot.setLabel("left", self.sweep.metric)
        self._update_plot()
        self._thread = QThread(self)
        self._worker = SweepWorker(self.sweep)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.trial_finished.connect(self._on_worker_trial_finished)
        self._worker.finished.connect(self._on_worker_finished)
        self.startButton.setEnabled(False)
        self.stopButton.setEnabled(True)
        self.statusLabel.setText("running…")
        self._thread.start()

    def _on_stopButton_clicked(self) -> None:
        if self._worker is not None:
            self._worker.request_stop()
            self.statusLabel.setText("stopping after this epoch…")

    def _on_worker_trial_finished(self, row: dict) -> None:
        self.trialsModel.add(row)
        self._update_plot()
        self.applyBestButton.setEnabled(self.best() is not None)

    def _on_worker_finished(self, message: str) -> None:
        thread = self._thread
        self._thread, self._worker = None, None
        thread.quit()
        thread.wait()
        self.startButton.setEnabled(True)
        self.stopButton.setEnabled(False)
        best = self.best()
        self.statusLabel.setText(message or (f"best: trial {best['number']} {best['value']:.4g}" if best else "done"))
        self._update_importances()
        self.sweep_finished.emit(message)

    def shutdown(self) -> None:
        """Stop and wait (the window's close): never a QThread dropped while running."""
        if self._worker is not None:
            self._worker.request_stop()
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()

    # -- results
    def best(self) -> dict | None:
        done = [r for r in self.trialsModel.rows if r["value"] is not None]
        if not done or self.sweep is None:
            return None
        pick = max if self.sweep.direction == "maximize" else min
        return pick(done, key=lambda r: r["value"])

    def best_so_far(self) -> tuple[list[int], list[float]]:
        xs, ys, best = [], [], None
        better = (lambda a, b: a > b) if self.sweep and self.sweep.direction == "maximize" else (lambda a, b: a < b)
        for r in sorted(self.trialsModel.rows, key=lambda r: r["number"]):
            if r["value"] is None:
                continue
            best = r["value"] if best is None or better(r["value"], best) else best
            xs.append(r["number"])
            ys.append(best)
        return xs, ys

    def _update_plot(self) -> None:
        done = [r for r in self.trialsModel.rows if r["value"] is not None]
        self.valueCurve.setData([r["number"] for r in done], [r["value"] for r in done])
        self.bestCurve.setData(*self.best_so_far())
        self._update_parallel(done)

    def _update_parallel(self, done: list[dict]) -> None:
        """One line per finished trial across the parameter axes and the metric, each scaled to 0..1."""
        for line in self.parallel_lines:
            self.parallelPlot.removeItem(line)
        self.parallel_lines = []
        if not done or self.sweep is None:
            return
        axes = [p.path for p in self.sweep.params]
        columns = [[_number(r["params"].get(a), p) for r in done] for a, p in zip(axes, self.sweep.params)]
        columns.append([r["value"] for r in done])
        scaled = []
        for col in columns:
            lo, hi = min(col), max(col)
            scaled.append([0.5 if hi == lo else (v - lo) / (hi - lo) for v in col])
        self.parallelPlot.getAxis("bottom").setTicks([list(enumerate([*axes, self.sweep.metric]))])
        for i in range(len(done)):
            line = self.parallelPlot.plot(list(range(len(scaled))), [c[i] for c in scaled])
            self.parallel_lines.append(line)

    def importances(self) -> dict[str, float]:
        """optuna.importance over the study's finished trials (empty below two)."""
        import optuna

        from nnstudio.core.experiments.study import open_study

        if self.sweep is None or len([r for r in self.trialsModel.rows if r["value"] is not None]) < 2:
            return {}
        study = open_study(self.sweep)
        try:
            return dict(optuna.importance.get_param_importances(study))
        except (RuntimeError, ValueError):  # e.g. a parameter that never varied
            return {}

    def _update_importances(self) -> None:
        found = self.importances()
        self.importanceLabel.setText("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in found.items())
                                     if found else "")

    def _on_openTrialButton_clicked(self) -> None:
        rows = self.trialsView.selectionModel().selectedRows()
        row = self.trialsModel.rows[rows[0].row()] if rows else self.best()
        if row is not None and row.get("run_dir"):
            from pathlib import Path

            self.model_opened.emit(str(Path(row["run_dir"]) / "best.pt"))

    # -- cross-validation
    def _on_cvButton_clicked(self) -> None:
        if self.running or self._config is None:
            return
        self._thread = QThread(self)
        self._worker = CVWorker(self._config(), self.foldsSpin.value())
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.finished.connect(self._on_cv_finished)
        self.startButton.setEnabled(False)
        self.cvButton.setEnabled(False)
        self.cvLabel.setText("cross-validating…")
        self._thread.start()

    def _on_cv_finished(self, result: dict, message: str) -> None:
        thread = self._thread
        self._thread, self._worker = None, None
        thread.quit()
        thread.wait()
        self.startButton.setEnabled(True)
        self.cvButton.setEnabled(True)
        self.cv_result = result
        if message:
            self.cvLabel.setText(message)
        else:
            folds = len(result["folds"])
            self.cvLabel.setText(f"{folds} folds: " + "  ".join(f"{k} {m:.4g} ± {result['std'][k]:.2g}"
                                                                 for k, m in result["mean"].items()))
        self.cv_finished.emit(message)

    def _on_applyBestButton_clicked(self) -> None:
        best = self.best()
        if best is not None:
            self.best_applied.emit(dict(best["params"]))
