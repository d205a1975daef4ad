"""Prediction on a new file: open or drop a table with the training columns, see each row's prediction
beside it, export the rows with their predictions as CSV. The checks and the numbers are `core.results.predict`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from nnstudio.core.model.checkpoint import LoadedCheckpoint
from nnstudio.core.errors import NNStudioError
from nnstudio.core.results.predict import Prediction, TableCheck, predict_table, save_predictions
from nnstudio.gui.rows_model import table_view

DATA_FILTER = "Data files (*.csv *.tsv *.txt *.parquet *.pq);;All files (*)"


class PredictPanel(QWidget):
    """Needs a model with its preprocessing (`set_model`); reports problems through `failed`."""

    predicted = Signal(str)
    failed = Signal(str)
    exported = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.checkpoint: LoadedCheckpoint | None = None
        self.threshold: float | None = None
        self.prediction: Prediction | None = None
        self.table: Any = None
        self.path: Path | None = None
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.predictOpenButton = QPushButton("Open file to predict…")
        self.predictOpenButton.setObjectName("predictOpenButton")
        self.predictOpenButton.clicked.connect(self._on_predict_open_button_clicked)
        row.addWidget(self.predictOpenButton)
        self.predictExportButton = QPushButton("Export CSV…")
        self.predictExportButton.setObjectName("predictExportButton")
        self.predictExportButton.setEnabled(False)
        self.predictExportButton.clicked.connect(self._on_predict_export_button_clicked)
        row.addWidget(self.predictExportButton)
        row.addStretch(1)
        layout.addLayout(row)
        self.predictStatus = QLabel()
        self.predictStatus.setObjectName("predictStatus")
        self.predictStatus.setWordWrap(True)
        layout.addWidget(self.predictStatus)
        self.predictMessages = QLabel()
        self.predictMessages.setObjectName("predictMessages")
        self.predictMessages.setWordWrap(True)
        layout.addWidget(self.predictMessages)
        self.predictTable, self.predictModel = table_view("predictTable", self)
        layout.addWidget(self.predictTable, 1)
        self.set_model(None)

    def set_model(self, checkpoint: LoadedCheckpoint | None, threshold: float | None = None) -> None:
        """The model to apply (with its stored preprocessing); None disables the panel's actions."""
        self.checkpoint = checkpoint
        self.threshold = threshold
        ok = checkpoint is not None and checkpoint.preprocessor is not None
        self.predictOpenButton.setEnabled(ok)
        if not ok:
            self.predictStatus.setText("Train a model or open a checkpoint; then open a file with its columns "
                                       "(the target may be absent) to predict each row.")
        elif getattr(checkpoint.preprocessor, "kind", None) == "image":
            pre = checkpoint.preprocessor
            self.predictStatus.setText(f"Image model ({pre.height}×{pre.width}, {pre.channels} channel(s), classes "
                                       f"{', '.join(pre.classes)}); drop an image or a folder of images to predict.")
        else:
            pre = checkpoint.preprocessor
            self.predictStatus.setText(f"Model for '{pre.target}' ({pre.task}); a file needs the columns: "
                                       f"{', '.join(pre.feature_names)}."
                                       + (f" Decision threshold {threshold:.2f}." if threshold is not None else ""))

    def predict_path(self, path: str | Path) -> bool:
        """Read the file and predict every row; on any problem say which column and rows, keep what was shown."""
        from nnstudio.core.data import read_table

        if self.checkpoint is None or self.checkpoint.preprocessor is None:
            self.failed.emit("Train a model or open a checkpoint before predicting.")
            return False
        path = Path(path)
        if getattr(self.checkpoint.preprocessor, "kind", None) == "image":
            return self._predict_images(path)
        try:
            table = read_table(path)
            prediction = predict_table(self.checkpoint, table, threshold=self.threshold)
        except NNStudioError as exc:
            message = f"{path.name}: {exc}"
            self.predictMessages.setText(message)
            self.failed.emit(message)
            return False
        self.table, self.prediction, self.path = table, prediction, path
        columns = {**prediction.columns, **{series.name: series for series in table.get_columns()}}
        self.predictModel.set_columns(columns)
        notes = list(prediction.check.notes)
        if prediction.metrics:
            notes.insert(0, f"metrics against '{self.checkpoint.preprocessor.target}': "
                         + "  ".join(f"{k} {v:.4g}" for k, v in prediction.metrics.items()))
        if prediction.metrics_note:
            notes.append(prediction.metrics_note)
        self.predictMessages.setText("\n".join(notes) if notes else f"{len(table):,} rows predicted.")
        self.predictExportButton.setEnabled(True)
        self.predicted.emit(str(path))
        return True

    def _predict_images(self, path: Path) -> bool:
        """An image or a folder through the image model: the table of probabilities and a thumbnail grid."""
        from nnstudio.core.results.predict import predict_images
        from nnstudio.gui.image_grid import PredictedImagesGrid

        try:
            result = predict_images(self.checkpoint, path)
        except NNStudioError as exc:
            message = f"{path.name}: {exc}"
            self.predictMessages.setText(message)
            self.failed.emit(message)
            return False
        if getattr(self, "predictImages", None) is None:
            self.predictImages = PredictedImagesGrid(self)
            self.layout().addWidget(self.predictImages, 1)
        probs = [float(result.columns[f"probability_{c}"][i]) for i, c in enumerate(result.columns["prediction"])]
        self.predictImages.show_predictions(result.paths, list(result.columns["prediction"]), probs)
        import polars as pl

        self.table = pl.DataFrame({"file": result.files})
        self.prediction = Prediction({k: v for k, v in result.columns.items()}, TableCheck(), result.metrics)
        self.path = path
        self.predictModel.set_columns({"file": self.table["file"], **result.columns})
        notes = [f"{len(result.files):,} image(s) predicted."]
        if result.metrics:
            notes.append("metrics against the class folders: "
                         + "  ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()))
        notes += [f"skipped {line}" for line in result.skipped[:5]]
        self.predictMessages.setText("\n".join(notes))
        self.predictExportButton.setEnabled(True)
        self.predicted.emit(str(path))
        return True

    def export_csv(self, path: str | Path) -> Path:
        if self.prediction is None:
            raise NNStudioError("nothing predicted yet: open a file to predict first")
        return save_predictions(self.table, self.prediction, path)

    def _on_predict_open_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open file to predict", "", DATA_FILTER)
        if path:
            self.predict_path(path)

    def _on_predict_export_button_clicked(self) -> None:
        start = str(self.path.with_name(self.path.stem + "-predictions.csv")) if self.path else "predictions.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export predictions", start, "CSV files (*.csv)")
        if not path:
            return
        try:
            self.export_csv(path)
        except (NNStudioError, OSError) as exc:
            self.failed.emit(f"{path}: could not export ({exc})")
            return
        self.exported.emit(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and self.predictOpenButton.isEnabled():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.predict_path(urls[0])
