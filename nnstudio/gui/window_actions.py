"""The window's actions and menus: File (recent files, samples), View (smoothing, log scale, plot export, history),
Tools (TensorBoard) and Help."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog, QMessageBox)

from nnstudio import __version__
from nnstudio.resources import IMAGE_SAMPLES, SAMPLES, resource_path, sample_dataset
from nnstudio.gui.window_settings import MAX_RECENT


class WindowActions:
    """Actions, menus and the small View/Tools/Help slots behind them."""

    def _action(self, name: str, text: str, slot, shortcut: QKeySequence | str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.actionOpenDataset = self._action("actionOpenDataset", "Open &dataset…", self._on_open_dataset_triggered,
                                              K.Open, "Open a CSV/TSV, Parquet, NumPy or tensor file")
        self.actionOpenCheckpoint = self._action("actionOpenCheckpoint", "Open &checkpoint…",
                                                 self._on_open_checkpoint_triggered, "Ctrl+Shift+O")
        self.actionSaveCheckpoint = self._action("actionSaveCheckpoint", "&Save checkpoint…",
                                                 self._on_save_checkpoint_triggered, K.Save)
        self.actionOpenModelClass = self._action("actionOpenModelClass", "Open model class from a &Python file…",
                                                 self._on_open_model_class_triggered, None,
                                                 "Open weights with your own nn.Module class (runs that file)")
        self.actionOpenProject = self._action("actionOpenProject", "Open &project…", self._on_open_project_triggered,
                                              "Ctrl+Alt+O")
        self.actionSaveProject = self._action("actionSaveProject", "Save p&roject…", self._on_save_project_triggered,
                                              "Ctrl+Shift+S")
        self.actionQuit = self._action("actionQuit", "&Quit", self.close, K.Quit)
        self.actionTrain = self._action("actionTrain", "&Train", self._on_train_requested, "F5")
        self.actionContinue = self._action("actionContinue", "&Continue training", self._on_continue_triggered,
                                           "Ctrl+F5", "Train the current model further, keeping its weights")
        self.actionPause = self._action("actionPause", "&Pause", self._on_pause_triggered, "F6")
        self.actionStop = self._action("actionStop", "St&op", self._on_stop_requested, "Shift+F5")
        self.actionEvaluate = self._action("actionEvaluate", "&Evaluate", self._on_evaluate_triggered, "F7",
                                           "Loss and metrics per split, confusion matrix or residuals, in the Evaluation tab")
        self.actionPredict = self._action("actionPredict", "&Predict on a file…", self._on_predict_triggered, "F9",
                                          "Apply the model to a new file with the training columns")
        self.actionFindLR = self._action("actionFindLR", "Find &learning rate…", self._on_find_lr_triggered,
                                         tip="A short range test on a copy of the model proposes a learning rate")
        self.actionTensorBoard = self._action("actionTensorBoard", "Open &TensorBoard",
                                              self._on_tensorboard_triggered, "F8")
        self.actionExportLoss = self._action("actionExportLoss", "Export loss plot as PNG…",
                                             lambda: self._export_plot(self.lossPlot, "loss"))
        self.actionExportMetrics = self._action("actionExportMetrics", "Export metrics plot as PNG…",
                                                lambda: self._export_plot(self.metricsPlot, "metrics"))
        self.actionSmoothing = self._action("actionSmoothing", "Smooth step loss", self._on_smoothing_toggled)
        self.actionSmoothing.setCheckable(True)
        self.actionSmoothing.setChecked(True)
        self.actionLogScale = self._action("actionLogScale", "Log scale for loss", self._on_log_scale_toggled)
        self.actionLogScale.setCheckable(True)
        self.actionClearHistory = self._action("actionClearHistory", "Clear earlier runs", self._on_clear_history)
        self.actionResetLayout = self._action("actionResetLayout", "Reset layout", self._on_reset_layout)
        self.actionAbout = self._action("actionAbout", "&About nnstudio", self._on_about_triggered)
        self.actionUndo = self.modelBuilder.undo_stack.createUndoAction(self, "&Undo")
        self.actionUndo.setObjectName("actionUndo")
        self.actionUndo.setShortcut(K.Undo)
        self.actionRedo = self.modelBuilder.undo_stack.createRedoAction(self, "&Redo")
        self.actionRedo.setObjectName("actionRedo")
        self.actionRedo.setShortcut(K.Redo)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.actionOpenDataset, self.actionOpenCheckpoint, self.actionOpenModelClass,
                              self.actionSaveCheckpoint])
        self._build_samples_menu(file_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.actionOpenProject, self.actionSaveProject])
        self.exportMenu = file_menu.addMenu("E&xport")
        self.exportMenu.setObjectName("exportMenu")
        self.exportMenu.addActions([self.actionExportScript, self.actionExportModel])
        file_menu.addSeparator()
        file_menu.addActions([self.actionFollowRun, self.actionOpenFollowedCheckpoint, self.actionStopFollowing])
        file_menu.addSeparator()
        self.recentMenu = file_menu.addMenu("Recent files")
        self.recentMenu.setObjectName("recentMenu")
        file_menu.addSeparator()
        file_menu.addAction(self.actionQuit)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([self.actionUndo, self.actionRedo])
        run_menu = bar.addMenu("&Run")
        run_menu.addActions([self.actionTrain, self.actionContinue, self.actionPause, self.actionStop])
        run_menu.addSeparator()
        run_menu.addActions([self.actionEvaluate, self.actionPredict, self.actionFindLR, self.actionTensorBoard])
        view_menu = bar.addMenu("&View")
        for dock in (self.datasetDock, self.modelDock, self.trainingDock, self.codeView, self.runsDock):
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addActions([self.actionSmoothing, self.actionLogScale, self.actionClearHistory])
        view_menu.addSeparator()
        view_menu.addActions([self.actionExportLoss, self.actionExportMetrics])
        view_menu.addSeparator()
        view_menu.addAction(self.actionResetLayout)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.actionAbout)

    def recent_files(self) -> list[str]:
        value = self.settings.value("recentFiles", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.recent_files() if f != path]
        self.settings.setValue("recentFiles", files[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recentMenu.clear()
        files = self.recent_files()
        for i, path in enumerate(files):
            action = self.recentMenu.addAction(f"&{i + 1}  {Path(path).name}")
            action.setToolTip(path)
            action.setData(path)
            action.triggered.connect(self._on_recent_triggered)
        self.recentMenu.setEnabled(bool(files))

    def _on_recent_triggered(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.open_path(action.data())

    def _build_samples_menu(self, file_menu) -> None:
        """File → Open sample: the bundled real datasets, one action each (objectName sampleAction_<stem>)."""
        self.samplesMenu = file_menu.addMenu("Open &sample")
        self.samplesMenu.setObjectName("samplesMenu")
        for name, text in SAMPLES:
            action = self.samplesMenu.addAction(text)
            action.setObjectName(f"sampleAction_{Path(name).stem}")
            action.setData(name)
            action.triggered.connect(self._on_sample_triggered)
        self.samplesMenu.addSeparator()
        for name, text in IMAGE_SAMPLES:
            action = self.samplesMenu.addAction(text)
            action.setObjectName(f"sampleAction_{name}")
            action.setData(name)
            action.triggered.connect(self._on_image_sample_triggered)

    def _on_image_sample_triggered(self) -> None:
        self.open_path(resource_path("samples", self.sender().data()))

    def _on_sample_triggered(self) -> None:
        self.open_sample(self.sender().data())

    def open_sample(self, name: str | None = None) -> None:
        self.open_dataset(sample_dataset(name) if name else sample_dataset())

    # ------------------------------------------------------------------------------------------ view
    def _export_plot(self, plot, name: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", str(Path(self._last_dir("export")) / f"{name}.png"),
                                              "PNG images (*.png)")
        if not path:
            return
        try:
            plot.export_png(path)
        except OSError as exc:
            self.show_error("Cannot export plot", str(exc))
            return
        self._remember_dir(path, "export")
        self.statusBar().showMessage(f"exported {path}", 5000)

    def _on_smoothing_toggled(self, checked: bool) -> None:
        # alpha 0.2 lags ~5 steps: smooth enough to read the trend, close enough to follow a fast drop.
        self.lossPlot.set_smoothing(0.2 if checked else None)

    def _on_log_scale_toggled(self, checked: bool) -> None:
        self.lossPlot.set_log_y(checked)

    def _on_clear_history(self) -> None:
        self.lossPlot.clear_history()
        self.metricsPlot.clear_history()

    def _on_tensorboard_triggered(self) -> None:
        self.statusBar().showMessage("starting TensorBoard…")
        self.tensorboard.start(self.logdir)

    def _on_tensorboard_ready(self, url: str) -> None:
        self.statusBar().showMessage(f"TensorBoard at {url}", 15000)

    def _on_tensorboard_failed(self, message: str) -> None:
        self.show_error("TensorBoard", message)

    def _on_about_triggered(self) -> None:
        QMessageBox.about(self, "About nnstudio", about_text())


def about_text() -> str:
    import torch
    from PySide6 import QtCore, __version__ as pyside_version

    from nnstudio.core.devices import list_devices

    devices = "<br>".join(d.label for d in list_devices())
    return (f"<h3>nnstudio {__version__}</h3>"
            "<p>Build, train, inspect and save PyTorch networks.</p>"
            f"<p>torch {torch.__version__}<br>PySide6 {pyside_version}, Qt {QtCore.qVersion()}</p>"
            f"<p><b>Devices</b><br>{devices}</p>")
