"""Run → Find learning rate: the range test (core.training.lr_find) in the training worker, its curve, one-click apply."""

from __future__ import annotations

import math
from typing import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from nnstudio.core.training.lr_find import LRFindRun
from nnstudio.gui.training_worker import TrainingController


class LRFindDialog(QDialog):
    """Non-modal. `start()` runs the range test through its own TrainingController (the same QThread
    bridge as training); the result arrives as `fit_finished`'s plain payload."""

    lr_applied = Signal(float)
    finished_test = Signal(object)  # the result payload (lrs, losses, smoothed, suggestion, why, status)
    failed = Signal(str)

    def __init__(self, factory: Callable[[], LRFindRun], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lrFindDialog")
        self.setWindowTitle("Find learning rate")
        self.setModal(False)
        self.factory = factory
        self.result: dict | None = None
        self.controller = TrainingController(self)
        self.controller.fit_finished.connect(self._on_controller_fit_finished)
        self.controller.fit_failed.connect(self._on_controller_fit_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)

        import pyqtgraph as pg

        self.lrPlot = pg.PlotWidget()
        self.lrPlot.setObjectName("lrPlot")
        self.lrPlot.setLogMode(x=True, y=False)
        self.lrPlot.setLabel("bottom", "learning rate")
        self.lrPlot.setLabel("left", "loss")
        self.lrPlot.addLegend(offset=(10, -10))  # bottom left: the curves start high on the left
        self.rawCurve = self.lrPlot.plot(name="loss", pen=pg.mkPen("#b0b0b0", width=1))
        self.smoothCurve = self.lrPlot.plot(name="smoothed", pen=pg.mkPen("#1f77b4", width=2))
        self.proposalLine = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", width=1.5,
                                                                   style=Qt.PenStyle.DashLine))
        self.proposalLine.setVisible(False)
        self.lrPlot.addItem(self.proposalLine)
        self.proposalLabel = QLabel("running the range test…")
        self.proposalLabel.setObjectName("proposalLabel")
        self.proposalLabel.setWordWrap(True)
        self.applyButton = QPushButton("Apply")
        self.applyButton.setObjectName("applyButton")
        self.applyButton.setEnabled(False)
        self.applyButton.clicked.connect(self._on_applyButton_clicked)
        self.rerunButton = QPushButton("Run again")
        self.rerunButton.setObjectName("rerunButton")
        self.rerunButton.clicked.connect(self.start)
        self.closeButton = QPushButton("Close")
        self.closeButton.setObjectName("closeButton")
        self.closeButton.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.rerunButton, self.applyButton, self.closeButton):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.lrPlot, 1)
        layout.addWidget(self.proposalLabel)
        layout.addLayout(buttons)
        self.resize(560, 420)

    @property
    def suggestion(self) -> float | None:
        return self.result.get("suggestion") if self.result else None

    @Slot()
    def start(self) -> None:
        if self.controller.is_running():
            return
        self.result = None
        self.applyButton.setEnabled(False)
        self.proposalLine.setVisible(False)
        self.proposalLabel.setText("running the range test (a few hundred steps on a copy of the model)…")
        self.controller.start(self.factory)

    @Slot(object)
    def _on_controller_fit_finished(self, payload: dict) -> None:
        self.result = payload
        lrs, losses, smoothed = payload["lrs"], payload["losses"], payload["smoothed"]
        self.rawCurve.setData(lrs, losses)
        self.smoothCurve.setData(lrs, smoothed)
        if smoothed:  # the last steps' losses shoot up: show the useful range, as fastai's plot does
            low = min(min(losses), min(smoothed))
            high = smoothed[0] * 1.4 if smoothed[0] > low else max(smoothed)
            self.lrPlot.setYRange(low - 0.05 * (high - low), high, padding=0)
        lr = payload.get("suggestion")
        if lr is not None and math.isfinite(lr):
            self.proposalLine.setValue(math.log10(lr))  # the x axis is log10 in log mode
            self.proposalLine.setVisible(True)
            self.proposalLabel.setText(f"Proposed learning rate: {lr:.3g}\nWhy: {payload['why']}")
            self.applyButton.setText(f"Apply lr {lr:.3g}")
            self.applyButton.setEnabled(True)
        else:
            self.proposalLabel.setText(f"No proposal: {payload['why']}")
        self.finished_test.emit(payload)

    @Slot(str)
    def _on_controller_fit_failed(self, message: str) -> None:
        self.proposalLabel.setText(f"The range test failed: {message}")
        self.failed.emit(message)

    @Slot(bool)
    def _on_controller_running_changed(self, running: bool) -> None:
        self.rerunButton.setEnabled(not running)

    @Slot()
    def _on_applyButton_clicked(self) -> None:
        if self.suggestion is not None:
            self.lr_applied.emit(float(self.suggestion))

    def closeEvent(self, event) -> None:
        self.controller.shutdown()
        super().closeEvent(event)
