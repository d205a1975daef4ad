"""The studio window: dataset panel, model builder and training controls around the plots.

Thin by design: it shows core objects and turns user actions into core calls. Training runs in a
QThread through `TrainingController`; its signals arrive here, in the GUI thread, as plain values.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter, QTabWidget, QVBoxLayout,
    QWidget)

from nnstudio import __version__
from nnstudio.core.model.checkpoint import LoadedCheckpoint, build_checkpoint, atomic_torch_save, load_checkpoint, reinfer
from nnstudio.core.files import file_failure, regular_file
from nnstudio.core.model.user_class import (classes_in, init_parameters, open_with_class, parse_arguments,
                                            read_dict as _read_dict, stored_arguments)
from nnstudio.core.config import RunConfig
from nnstudio.core.data import PreparedData, model_io_size, prepare
from nnstudio.core.errors import CheckpointError, DatasetNotCheckpoint, NNStudioError
from nnstudio.core.model.spec import SpecModel, build_model, default_layers
from nnstudio.core.run import TrainingRun
from nnstudio.gui.dataset_panel import DatasetPanel
from nnstudio.gui.dock_layout import MIN_PLOT_WIDTH, DockScrollArea, fit_docks, fit_to_screen
from nnstudio.gui.health_notice import HealthNotifier
from nnstudio.gui.model_builder import ModelBuilderPanel
from nnstudio.gui.model_file_dialogs import InferredModelDialog, RunModelCodeDialog
from nnstudio.gui.plots import LossPlot, MetricsPlot
from nnstudio.gui.predict_panel import PredictPanel
from nnstudio.gui.tensorboard_launcher import TensorBoardLauncher
from nnstudio.gui.training_panel import TrainingPanel
from nnstudio.gui.training_worker import TrainingController
from nnstudio.gui.window_runs import WindowRuns
from nnstudio.resources import SAMPLES, resource_path, sample_dataset

DATA_FILTER = "Data files (*.csv *.tsv *.txt *.parquet *.pq *.npy *.npz *.pt *.pth);;All files (*)"
CHECKPOINT_FILTER = "PyTorch checkpoints (*.pt *.pth);;All files (*)"
PROJECT_FILTER = "nnstudio projects (*.toml);;All files (*)"
MAX_RECENT = 10
#: Step losses the window logs to TensorBoard per second at most (every step when training is slower).
#: An event costs ~50 µs of CPU (TensorBoard's writer checksums each record in pure Python), partly in
#: its own thread competing for the GIL; 50 a second is ~0.3% of a core, and still gives TensorBoard's
#: 1,000 plotted points per tag for any run longer than 20 seconds.
TENSORBOARD_STEPS_PER_SECOND = 50.0

#: Delay that puts work in a later pass of the event loop than the paints it follows. Qt 6 runs a
#: zero-delay single shot as a queued call, in the same batch of posted events as those paints (the
#: window froze for both); a timer runs after the paints, and after the timers already due.
NEXT_PASS_MS = 1


def default_logdir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation) or str(Path.home())
    return Path(base) / "runs"


def _excluded_by(preprocessor, frame) -> list[str] | None:
    """The columns a checkpoint's model does not take as inputs (None when it needs columns the table lacks)."""
    names = set(preprocessor.feature_names)
    if not names <= set(frame.columns):
        return None
    return [str(c) for c in frame.columns if c != preprocessor.target and c not in names]


class MainWindow(QMainWindow):
    """The nnstudio window; constructible with no arguments."""

    checkpoint_loaded = Signal(str)
    checkpoint_saved = Signal(str)
    project_loaded = Signal(str)
    project_saved = Signal(str)
    error_shown = Signal(str)
    layers_asked = Signal(str)  # a state_dict's unknown layers are being asked about (file name)
    training_finished = Signal(dict)
    loss_warned = Signal(str)  # the loss climbed far above its best (before it is NaN)
    recovery_offered = Signal(str)  # the run folder of an unfinished run

    def __init__(self, settings: QSettings | None = None, logdir: str | Path | None = None):
        super().__init__()
        self.settings = settings if settings is not None else QSettings("nnstudio", "nnstudio")
        self.logdir = Path(logdir) if logdir is not None else Path(self.settings.value("logdir", str(default_logdir())))
        self.setWindowTitle("nnstudio")
        self.setObjectName("mainWindow")
        icon = resource_path("icons", "nnstudio.png")
        if icon.exists():
            self.setWindowIcon(QIcon(str(icon)))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)

        self.model: SpecModel | None = None  # the trained or loaded network, kept for saving and evaluating
        self.loaded_checkpoint: LoadedCheckpoint | None = None
        self.model_unsaved = False  # a run trained the model since it was last saved or opened
        self._close_confirmed = False
        self._climb = (None, None, False)  # best training loss, its epoch, warned, of the running fit
        self.last_run: TrainingRun | None = None
        self.last_error = ""
        self.checkpoint_path: Path | None = None
        self.run_count = 0
        self._pending_project: RunConfig | None = None
        self._pending_inferred: LoadedCheckpoint | None = None
        self._pending_model_class: tuple[Path, Path] | None = None
        self._continue_next = False
        self._finished_info: dict | None = None
        self._metrics_end_pending = False  # the metrics plot leaves live mode in the pass after the run ends
        self._plots_to_start: list = []  # plots that have not started the new run yet (in later passes)
        self._starting = False  # Train pressed; the training thread is still building the run
        self._prepared: tuple[tuple, PreparedData] | None = None  # (request, tensors): the last prepared data
        self.data_seed = 0
        self.evaluation = None  # core.results.evaluate.Evaluation of the current model, shown in the evaluation tab
        self.decision_threshold: float | None = None  # binary: kept from the evaluation, saved with the model
        self._project_path: Path | None = None  # the project the window shows (named in the title)

        self._build_central()
        self._build_evaluation()
        self._build_docks()
        self._build_runs()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self.controller = TrainingController(self)
        self.tensorboard = TensorBoardLauncher(self)
        self._connect()
        self._build_health()
        self._restore_settings()
        self.modelBuilder.set_layers(default_layers(), undoable=False)
        self._on_smoothing_toggled(self.actionSmoothing.isChecked())
        self._update_can_train()

    # ------------------------------------------------------------------------------------------ layout
    def _build_central(self) -> None:
        self.lossPlot = LossPlot()
        self.lossPlot.setObjectName("lossPlot")
        self.metricsPlot = MetricsPlot()
        self.metricsPlot.setObjectName("metricsPlot")
        self.plotSplitter = QSplitter(Qt.Orientation.Vertical)
        self.plotSplitter.setObjectName("plotSplitter")
        self.plotSplitter.addWidget(self.lossPlot)
        self.plotSplitter.addWidget(self.metricsPlot)
        self.plotSplitter.setStretchFactor(0, 3)
        self.plotSplitter.setStretchFactor(1, 2)
        self.plotSplitter.setMinimumWidth(MIN_PLOT_WIDTH)  # the docks shrink and scroll first
        self.setCentralWidget(self.plotSplitter)

    def _build_evaluation(self) -> None:
        """Evaluation and prediction are tabs beside the training curves (they need the width)."""
        plots = self.takeCentralWidget()
        self.centralTabs = QTabWidget()
        self.centralTabs.setObjectName("centralTabs")
        self.centralTabs.setDocumentMode(True)
        self._evaluation_panel = None
        self.evaluationTab = QWidget()  # holds the panel, made at first use: it imports pyqtgraph
        self.evaluationTab.setObjectName("evaluationTab")
        layout = QVBoxLayout(self.evaluationTab)
        layout.setContentsMargins(0, 0, 0, 0)
        self.predictPanel = PredictPanel()
        self.predictPanel.setObjectName("predictPanel")
        self.centralTabs.addTab(plots, "Training curves")
        self.centralTabs.addTab(self.evaluationTab, "Evaluation")
        self.centralTabs.addTab(self.predictPanel, "Predict")
        self.centralTabs.currentChanged.connect(self._on_centralTabs_current_changed)
        self.setCentralWidget(self.centralTabs)

    @property
    def evaluationPanel(self):
        """The evaluation panel, made the first time it is needed (a run's end, F7, the tab opened)."""
        if self._evaluation_panel is None:
            from nnstudio.gui.evaluation_panel import EvaluationPanel

            panel = EvaluationPanel()
            panel.setObjectName("evaluationPanel")
            self.evaluationTab.layout().addWidget(panel)
            panel.show()  # a child added to a shown window stays hidden until shown
            panel.threshold_kept.connect(self._on_evaluation_threshold_kept)
            panel.exported.connect(self._on_view_exported)
            panel.export_failed.connect(self._on_export_failed)
            self._evaluation_panel = panel
        return self._evaluation_panel

    def _on_centralTabs_current_changed(self, index: int) -> None:
        if self.centralTabs.widget(index) is self.evaluationTab:
            self.evaluationPanel  # noqa: B018 - shows what it needs when opened before any evaluation

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Every dock scrolls rather than clips its panel (see gui/dock_layout.py for what a new dock does)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(DockScrollArea(widget))
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.datasetPanel = DatasetPanel()
        self.datasetPanel.setObjectName("datasetPanel")
        self.modelBuilder = ModelBuilderPanel()
        self.modelBuilder.setObjectName("modelBuilder")
        self.trainingPanel = TrainingPanel()
        self.trainingPanel.setObjectName("trainingPanel")
        # Data and model share the left column as tabs (the order people work in); training controls sit
        # on the right, so the plots keep the middle of the window.
        self.datasetDock = self._dock("Dataset", "datasetDock", self.datasetPanel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.modelDock = self._dock("Model", "modelDock", self.modelBuilder, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.datasetDock, self.modelDock)
        self.datasetDock.raise_()
        self.trainingDock = self._dock("Training", "trainingDock", self.trainingPanel,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.setTabPosition(Qt.DockWidgetArea.LeftDockWidgetArea, QTabWidget.TabPosition.North)
        self._default_state = None
        self._build_code_view()

    def _build_code_view(self) -> None:
        """The code view dock, tabbed behind Training, and its File > Export actions (gui/code_view.py)."""
        from nnstudio.gui.code_view import CodeExport

        self.codeExport = CodeExport(self)
        self.codeViewPanel = self.codeExport.panel
        self.codeView = self._dock("Code", "codeView", self.codeViewPanel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.trainingDock, self.codeView)
        self.trainingDock.raise_()
        self.actionExportScript = self._action("actionExportScript", "&Python script…",
                                               self.codeExport._on_export_script_triggered,
                                               tip="The run as a script that needs only torch, numpy, polars and tensorboard")
        self.actionExportModel = self._action("actionExportModel", "&Model (ONNX, TorchScript, state_dict)…",
                                              self.codeExport._on_export_model_triggered,
                                              tip="The trained model for use without nnstudio, checked after export")

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

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setObjectName("statusBar")
        self.datasetStatus = QLabel("no dataset")
        self.datasetStatus.setObjectName("datasetStatus")
        self.modelStatus = QLabel("")
        self.modelStatus.setObjectName("modelStatus")
        status.addPermanentWidget(self.datasetStatus)
        status.addPermanentWidget(self.modelStatus)

    def _connect(self) -> None:
        dp, mb, tp, c = self.datasetPanel, self.modelBuilder, self.trainingPanel, self.controller
        dp.dataset_loaded.connect(self._on_dataset_loaded)
        dp.load_failed.connect(self._on_dataset_load_failed)
        dp.choices_changed.connect(self._on_dataset_choices_changed)
        mb.layers_changed.connect(self._on_model_layers_changed)
        mb.validity_changed.connect(self._on_model_validity_changed)
        tp.train_requested.connect(self._on_train_requested)
        tp.pause_requested.connect(self._on_pause_requested)
        tp.resume_requested.connect(self._on_resume_requested)
        tp.stop_requested.connect(self._on_stop_requested)
        c.run_created.connect(self._on_training_run_created)
        c.fit_started.connect(self._on_training_fit_started)
        c.steps_arrived.connect(self._on_training_steps_arrived)
        c.epochs_finished.connect(self._on_training_epochs_finished)
        c.progress.connect(self._on_training_progress)
        c.fit_finished.connect(self._on_training_fit_finished)
        c.fit_failed.connect(self._on_training_fit_failed)
        c.running_changed.connect(self._on_training_running_changed)
        self.tensorboard.ready.connect(self._on_tensorboard_ready)
        self.predictPanel.failed.connect(self._on_predict_failed)
        self.predictPanel.exported.connect(self._on_view_exported)
        self.tensorboard.failed.connect(self._on_tensorboard_failed)
        ce = self.codeExport
        for signal in (dp.choices_changed, dp.dataset_loaded, mb.layers_changed, tp.config_changed):
            signal.connect(ce._on_inputs_changed)
        mb.layer_hovered.connect(ce._on_layer_hovered)
        c.running_changed.connect(ce._on_running_changed)
        c.running_changed.connect(self.runs._on_controller_running_changed)

    # ------------------------------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        restored = geometry is not None and self.restoreGeometry(geometry)
        fit_to_screen(self, restored=restored)
        self._fit_docks()
        self._default_state = self.saveState()
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self._rebuild_recent_menu()

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

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

    def _fit_docks(self) -> None:
        """Side columns as wide as their panels want, as far as the plots' minimum width allows."""
        fit_docks(self, self.datasetDock, self.trainingDock, left_wanted=470,
                  right_wanted=max(330, self.trainingPanel.minimumSizeHint().width()))

    def _on_reset_layout(self) -> None:
        if self._default_state is not None:
            self.restoreState(self._default_state)
        for dock in (self.datasetDock, self.modelDock, self.trainingDock):
            dock.show()
        self._fit_docks()

    def _update_title(self, path: str | Path | None) -> None:
        """The window names what it shows: the project if one is open, else the dataset."""
        self.setWindowTitle(f"{Path(path).name} — nnstudio" if path else "nnstudio")

    # ------------------------------------------------------------------------------------------ messages
    def show_error(self, title: str, message: str) -> None:
        """A window-modal dialog that does not block the event loop (tests and training keep running)."""
        self.last_error = message
        self.statusBar().showMessage(message, 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_shown.emit(message)

    # ------------------------------------------------------------------------------------------ opening files
    def open_path(self, path: str | Path) -> None:
        """Open a dataset, a checkpoint (.pt) or a project (.toml), by what the file is."""
        path = Path(path)
        if path.is_dir():
            self.show_error("Cannot open a folder", f"{path} is a folder; open or drop one data file.")
            return
        if not path.exists():
            self.show_error("File not found", f"{path}: no such file.")
            return
        suffix = path.suffix.lower()
        try:
            regular_file(path, NNStudioError)
        except NNStudioError as exc:
            self.show_error("Cannot open", str(exc))
            return
        if suffix == ".toml":
            self.open_project(path)
        elif suffix in (".pt", ".pth"):
            self.open_checkpoint(path)
        else:
            self.open_dataset(path)

    def _build_samples_menu(self, file_menu) -> None:
        """File → Open sample: the bundled real datasets, one action each (objectName sampleAction_<stem>)."""
        self.samplesMenu = file_menu.addMenu("Open &sample")
        self.samplesMenu.setObjectName("samplesMenu")
        for name, text in SAMPLES:
            action = self.samplesMenu.addAction(text)
            action.setObjectName(f"sampleAction_{Path(name).stem}")
            action.setData(name)
            action.triggered.connect(self._on_sample_triggered)

    def _on_sample_triggered(self) -> None:
        self.open_sample(self.sender().data())

    def open_sample(self, name: str | None = None) -> None:
        self.open_dataset(sample_dataset(name) if name else sample_dataset())

    def open_dataset(self, path: str | Path) -> None:
        self.statusBar().showMessage(f"loading {Path(path).name}…")
        self.datasetPanel.open_file(str(path))

    def _on_open_dataset_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset", self._last_dir(), DATA_FILTER)
        if path:
            self.open_dataset(path)

    def _last_dir(self) -> str:
        return str(self.settings.value("lastDir", str(Path.home())))

    def _remember_dir(self, path: str | Path) -> None:
        self.settings.setValue("lastDir", str(Path(path).resolve().parent))

    def _on_dataset_loaded(self, path: str) -> None:
        self._add_recent(path)
        self._remember_dir(path)
        if self._pending_project is None:
            self._project_path = None  # a dataset opened on its own: the project no longer describes the window
        if self._pending_project is not None:
            cfg, self._pending_project = self._pending_project, None
            d = cfg.data
            try:
                self.datasetPanel.set_choices(target=d.target or None, task=d.task, split=d.split, missing=d.missing,
                                              exclude=d.exclude)
            except NNStudioError as exc:
                self.show_error("Cannot apply the project's data choices", str(exc))
        if self.loaded_checkpoint is not None and self.loaded_checkpoint.preprocessor is not None:
            pre = self.loaded_checkpoint.preprocessor
            if pre.target in self.datasetPanel.dataframe().columns:
                self.datasetPanel.set_choices(target=pre.target, task=pre.task,
                                              exclude=_excluded_by(pre, self.datasetPanel.dataframe()))
        self.statusBar().showMessage(f"loaded {Path(path).name}", 5000)
        self._update_title(self._project_path or path)
        self._on_dataset_choices_changed()
        if self.loaded_checkpoint is not None and self.model is self.loaded_checkpoint.model:
            self.evaluate_current(show=True)

    def _on_dataset_load_failed(self, path: str, message: str) -> None:
        self._pending_project = None
        self.show_error("Cannot open dataset", message)

    def _io_shape(self) -> tuple[int | None, int | None]:
        """Inputs and outputs the model must have for the dataset as currently configured."""
        df = self.datasetPanel.dataframe()
        if df is None:
            return None, None
        ckpt = self.loaded_checkpoint
        if ckpt is not None and ckpt.preprocessor is not None and self.model is ckpt.model:
            return ckpt.preprocessor.n_features, ckpt.preprocessor.n_outputs
        try:
            return model_io_size(df, self.datasetPanel.target(), self.datasetPanel.task_choice(),
                                 features=self.datasetPanel.features())
        except NNStudioError as exc:
            self.datasetStatus.setText(f"dataset: {exc}")
            return None, None

    def prepare_data(self, preprocessor=None) -> PreparedData:
        """The dataset panel's table and choices as tensors (reusing a model's preprocessing when given).

        Safe to call from the training thread with the arguments of :meth:`_data_request` taken in the GUI
        thread. The last result is kept: training again on the same table with the same choices reuses its
        tensors instead of converting the table again.
        """
        return self._prepare(self._data_request(preprocessor))

    def _data_request(self, preprocessor=None) -> tuple:
        dp = self.datasetPanel
        return (dp.dataframe(), dp.target(), dp.task_choice(), tuple(dp.split()), self.data_seed, dp.missing(),
                preprocessor, tuple(dp.features()))

    def _prepare(self, request: tuple) -> PreparedData:
        cached = self._prepared
        if cached is not None:
            key = cached[0]
            # The table and the preprocessing by identity (the table is never changed in place), choices by value.
            if key[0] is request[0] and key[6] is request[6] and key[1:6] == request[1:6] and key[7:] == request[7:]:
                return cached[1]
        df, target, task, split, seed, missing, preprocessor, features = request
        data = prepare(df, target, task, list(split), seed, missing, preprocessor=preprocessor, features=list(features))
        self._prepared = (request, data)
        return data

    def _on_dataset_choices_changed(self) -> None:
        if self.datasetPanel.dataframe() is None:
            return
        n_in, n_out = self._io_shape()
        self.modelBuilder.set_io(n_in, n_out)
        if n_in is not None:
            df = self.datasetPanel.dataframe()
            self.datasetStatus.setText(f"{Path(self.datasetPanel.path() or 'data').name}: {len(df):,} rows · "
                                       f"{n_in} inputs · {self.datasetPanel.task()}")
        self._update_can_train()

    # ------------------------------------------------------------------------------------------ model
    def _on_model_layers_changed(self) -> None:
        if self.model is not None and self.model.spec != self.modelBuilder.layers():
            self._forget_model_if_changed()
        self._update_model_status()
        self._update_can_train()

    def _forget_model_if_changed(self) -> None:
        from nnstudio.core.model.spec import normalize_layer

        layers = [normalize_layer(l, i + 1) for i, l in enumerate(self.modelBuilder.layers())]
        if self.model is not None and layers != self.model.spec:
            self.model = None
            if self.loaded_checkpoint is not None:
                self.statusBar().showMessage("the layers changed: the next run starts from new weights", 8000)

    def _on_model_validity_changed(self, ok: bool, reason: str) -> None:
        self._update_model_status()
        self._update_can_train()

    def _update_model_status(self) -> None:
        summary = self.modelBuilder.summary()
        trained = " · trained weights" if self.model is not None else ""
        self.modelStatus.setText(f"{len(summary.rows)} layers · {summary.total_params:,} parameters{trained}"
                                 if summary.ok else "model invalid")

    def _update_can_train(self) -> None:
        running = self.controller.is_running() if hasattr(self, "controller") else False
        reason = ""
        if self.datasetPanel.dataframe() is None:
            reason = "Open a dataset first"
        elif not self.modelBuilder.is_valid():
            errors = self.modelBuilder.summary().errors
            reason = errors[0] if errors else "The model is not valid"
        ok = not reason and not running
        self.trainingPanel.set_can_train(not reason, reason)
        self.actionTrain.setEnabled(ok)
        problems = self.continue_problems(self.continue_source(full=False)) if ok else []
        self.actionContinue.setEnabled(ok and not problems)
        self.actionContinue.setToolTip("Continue training: " + "; ".join(problems) if problems else
                                       "Go on from the last run's or the opened checkpoint's whole state")
        self.actionEvaluate.setEnabled(not running and self.model is not None and self.datasetPanel.dataframe() is not None)
        self.actionPredict.setEnabled(not running and self.predictPanel.predictOpenButton.isEnabled())
        self.actionSaveCheckpoint.setEnabled(not running and self.model is not None)
        self.actionPause.setEnabled(running)
        self.actionStop.setEnabled(running)
        self.actionFindLR.setEnabled(not reason and not running)

    # ------------------------------------------------------------------------------------------ training
    def _on_continue_triggered(self) -> None:
        self._continue_next = True
        self._on_train_requested()

    def continue_source(self, full: bool = True) -> LoadedCheckpoint | None:
        """What Continue goes on from: the last run's whole state, or the opened checkpoint's
        (`full=False`: without copying the trainer's state, for the enabled check)."""
        run = self.last_run
        if run is not None and self.model is run.model:
            from nnstudio.core.model.checkpoint import plain

            return LoadedCheckpoint(Path(run.cfg.output.name), run.model, run.model.spec, run.data.preprocessor,
                                    config=run.cfg.to_dict(), epoch=run.trainer.epoch,
                                    trainer_state=plain(run.trainer.state_dict()) if full else None,
                                    run_dir=str(run.run_dir))
        ckpt = self.loaded_checkpoint
        if ckpt is not None and self.model is ckpt.model:
            return ckpt
        return None

    def continue_problems(self, source: LoadedCheckpoint | None) -> list[str]:
        """Why Continue cannot go on from `source` with the data chosen now (empty: it can)."""
        from nnstudio.core.training.resume import choice_differences

        if source is None:
            return ["there is no trained model to continue; train one or open a checkpoint"]
        dp = self.datasetPanel
        return choice_differences(source, dp.target(), dp.task(), dp.path())

    def run_config(self) -> RunConfig:
        """The window's whole state as a run config: what Save project writes and a run uses."""
        cfg = RunConfig()
        dp = self.datasetPanel
        if dp.path():
            cfg.data.path = str(Path(dp.path()).resolve())
        if dp.dataframe() is not None:
            cfg.data.target = dp.target() or ""
            cfg.data.task = dp.task_choice()
            cfg.data.split = list(dp.split())
            cfg.data.missing = dp.missing()
            cfg.data.exclude = dp.excluded()
        cfg.layers = copy.deepcopy(self.modelBuilder.layers())
        cfg.training = self.trainingPanel.train_config()
        cfg.data.seed = self.data_seed
        cfg.output.logdir = str(self.logdir)
        cfg.output.checkpoint = str(self.checkpoint_path) if self.checkpoint_path else "model.pt"
        stem = Path(dp.path()).stem if dp.path() else "run"
        cfg.output.name = f"{stem}-{self.run_count + 1}"
        return cfg

    def _on_train_requested(self) -> None:
        if self.controller.is_running():
            return
        continue_training, self._continue_next = self._continue_next, False
        if self.datasetPanel.dataframe() is None or not self.modelBuilder.is_valid():
            self._update_can_train()
            return
        cfg = self.run_config()
        try:
            cfg.training.validate()
        except NNStudioError as exc:
            self.show_error("Cannot start training", str(exc))
            return
        # Train always starts from freshly initialised (seeded) weights; Continue goes on from the whole state
        # of the last run or the opened checkpoint, when that fits the data chosen now.
        source = self.continue_source() if continue_training else None
        if continue_training:
            problems = self.continue_problems(source)
            if problems:
                self.show_error("Cannot continue training", "; ".join(problems))
                return
        request = self._data_request(source.preprocessor if source is not None else None)
        overfit_watch = self.healthNotifier.watch()

        def build_run() -> TrainingRun:
            """Runs in the training thread: table → tensors, the model, the run (the window stays live)."""
            data = self._prepare(request)
            if source is not None:
                return TrainingRun(cfg, data=data, resume=source, tensorboard=True, checkpoint=False,
                                   max_step_log_rate=TENSORBOARD_STEPS_PER_SECOND, callbacks=[overfit_watch])
            model = build_model(cfg.layers, data.n_features, data.n_outputs, seed=cfg.training.seed)
            return TrainingRun(cfg, data=data, model=model, tensorboard=True, checkpoint=False,
                               max_step_log_rate=TENSORBOARD_STEPS_PER_SECOND, callbacks=[overfit_watch])

        self.run_count += 1
        self._starting = True
        note = " (continuing)" if source is not None else ""
        self.statusBar().showMessage(f"preparing {cfg.output.name} on {cfg.training.device}{note}…")
        self.controller.start(build_run)

    def _on_training_run_created(self, run: TrainingRun) -> None:
        """The training thread has built the run: its curves start now (a run that fails to start leaves
        the plots as they were). Each plot starts its run in a pass of the event loop of its own, after the
        paints that pressing Train caused (each repaints with the earlier runs): three short freezes of the
        window instead of one long one. The fit waits until both have (``hold_start``), and a plot that
        has not started when the run's data or its end arrive starts first."""
        self._starting = False
        self.last_run = run
        t = run.trainer
        self._climb = (t.best_train_loss if t.history else None, t.history[-1].epoch if t.history else None, False)
        self.centralTabs.setCurrentIndex(0)  # the curves of the new run
        self._plots_to_start = [self.lossPlot, self.metricsPlot]
        self.controller.hold_start()
        QTimer.singleShot(NEXT_PASS_MS, self, self._start_next_plot)

    def _start_next_plot(self) -> None:
        if not self._plots_to_start:
            return
        plot = self._plots_to_start.pop(0)
        run = self.last_run
        training = run.cfg.training
        if plot is self.metricsPlot:
            self._metrics_end_pending = False
            last_x = run.trainer.epoch + training.epochs
        else:
            last_x = run.trainer.global_step + training.epochs * math.ceil(len(run.data.train) / training.batch_size)
        # Starting the run, its paint, the next plot's start, its paint, the fit: one pass each.
        plot.hold_paint(then=self._start_next_plot if self._plots_to_start else self.controller.resume_start)
        plot.start_run(run.cfg.output.name, context=self._plot_context(run))
        plot.plan_x(last_x)  # the x axis spans the whole run from the start: the view stays put while it grows
        plot.set_live(True)

    @staticmethod
    def _plot_context(run: TrainingRun) -> tuple | None:
        """What runs overlaid on the plots must share: dataset, target and task (None: not known)."""
        pre = getattr(getattr(run, "data", None), "preprocessor", None)
        if pre is None:
            return None
        if not getattr(getattr(run.cfg, "data", None), "path", None):
            return None  # data not from a file: every run stays, as before
        return (str(Path(run.cfg.data_path).resolve()), pre.target, pre.task)

    def _start_plots_now(self) -> None:
        while self._plots_to_start:
            self._start_next_plot()

    def _end_metrics_run(self) -> None:
        if self._metrics_end_pending:  # not if the next run has started the plot again since
            self._metrics_end_pending = False
            self.metricsPlot.hold_paint()
            self.metricsPlot.set_live(False)

    def _on_pause_triggered(self) -> None:
        if self.controller.is_paused():
            self._on_resume_requested()
        else:
            self._on_pause_requested()

    def _on_pause_requested(self) -> None:
        if self.controller.is_running():
            self.controller.pause()
            self.trainingPanel.set_paused(True)
            self.actionPause.setText("&Resume")
            self.statusBar().showMessage("paused")

    def _on_resume_requested(self) -> None:
        if self.controller.is_running():
            self.controller.resume()
            self.trainingPanel.set_paused(False)
            self.actionPause.setText("&Pause")
            self.statusBar().showMessage("training…")

    def _on_stop_requested(self) -> None:
        if self.controller.is_running():
            self.controller.stop()
            self.statusBar().showMessage("stopping after this batch…")

    def _on_training_fit_started(self, info: dict) -> None:
        self.statusBar().showMessage(f"training on {info.get('device', '?')}: {info.get('n_train', '?')} rows, "
                                     f"{info.get('epochs', '?')} epochs")

    def _on_training_steps_arrived(self, steps: list, losses: list) -> None:
        self._start_plots_now()
        self.lossPlot.add_steps(steps, losses)

    def _on_training_epochs_finished(self, infos: list) -> None:
        self._start_plots_now()
        self._check_climb(infos)
        epochs = [info["epoch"] for info in infos]
        self.lossPlot.add_epochs([info["step"] for info in infos], [info["train_loss"] for info in infos],
                                 [info.get("val_loss") for info in infos])
        self.metricsPlot.add_epochs(epochs, [info.get("metrics", {}) for info in infos])
        self.metricsPlot.add_lrs(epochs, [info["lr"] for info in infos])
        self.metricsPlot.add_grad_norms(epochs, [info.get("grad_norm") for info in infos])

    def _check_climb(self, infos: list) -> None:
        """Warn once per run when the training loss climbs far above its best (core.training.divergence)."""
        from nnstudio.core.training.divergence import climb_warning

        best, best_epoch, warned = self._climb
        factor = self.last_run.cfg.training.divergence_factor if self.last_run is not None else 1000.0
        for info in infos:
            loss = info["train_loss"]
            message = None if warned else climb_warning(info["epoch"], loss, best, best_epoch, factor)
            if message:
                warned = True
                self.statusBar().showMessage("Warning: " + message, 0)
                self.loss_warned.emit(message)
            if math.isfinite(loss) and (best is None or loss < best):
                best, best_epoch = loss, info["epoch"]
        self._climb = (best, best_epoch, warned)

    def _on_training_progress(self, info: dict) -> None:
        self.trainingPanel.on_progress(info)

    def _on_training_fit_finished(self, info: dict) -> None:
        run = self.last_run
        if run is not None:
            self.model = run.model
            self.model_unsaved = self.model_unsaved or bool(info.get("epochs"))
            self._reset_after_run()
        reason = info.get("status") or info.get("reason", "completed")
        self.trainingPanel.on_finished(reason)
        test = info.get("test") or {}
        metrics = test or info.get("validation") or {}
        text = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v))
        label = "test score" if test else "validation (no test split)"
        self.statusBar().showMessage(f"{reason}: {info.get('epochs', '?')} epochs · {label}: {text}", 0)
        self._update_model_status()
        self._finished_info = dict(info)

    def _on_training_fit_failed(self, message: str) -> None:
        never_started, self._starting = self._starting, False
        run = self.last_run
        if run is not None and not never_started:
            self.model = run.model  # the engine restored the best finite weights; NaN weights are never kept
        self._reset_after_run()
        self.trainingPanel.on_failed(message)
        self.show_error("Cannot start training" if never_started else "Training stopped", message)

    def _reset_after_run(self) -> None:
        self._start_plots_now()
        # Both plots fit their data exactly again once the run is over, and each repaints for it: the loss
        # plot now, its paint in the next pass, then the metrics plot, then its paint (one pass each: short
        # freezes of the window, not one long one). The metrics plot's last points are on screen now.
        metrics_live = self.metricsPlot.is_live()
        if metrics_live:
            self.metricsPlot.redraw()
            self._metrics_end_pending = True
        if self.lossPlot.is_live():
            self.lossPlot.hold_paint(then=self._end_metrics_run if metrics_live else None)
            self.lossPlot.set_live(False)
        elif metrics_live:
            QTimer.singleShot(NEXT_PASS_MS, self, self._end_metrics_run)
        self.actionPause.setText("&Pause")

    def _on_training_running_changed(self, running: bool) -> None:
        self.trainingPanel.set_running(running)
        self.datasetPanel.setEnabled(not running)
        self.modelBuilder.setEnabled(not running)
        for action in (self.actionOpenDataset, self.actionOpenCheckpoint, self.actionOpenProject):
            action.setEnabled(not running)
        self._update_can_train()
        if not running and self._finished_info is not None:
            self._emit_finished_when_shown()

    def _emit_finished_when_shown(self) -> None:
        """``training_finished`` once the plots have shown the end of the run: their last changes and paints
        come in later passes of the event loop (see _reset_after_run), and whoever waits for the signal
        should find the window idle: save, evaluate and train enabled, nothing of the run left to paint."""
        if self._finished_info is None:
            return
        if self._metrics_end_pending or self.lossPlot.is_paint_held() or self.metricsPlot.is_paint_held():
            QTimer.singleShot(NEXT_PASS_MS, self, self._emit_finished_when_shown)
            return
        info, self._finished_info = self._finished_info, None
        self.decision_threshold = None  # a new model: a threshold kept for the last one no longer applies
        if self.evaluate_current(show=True):
            self.centralTabs.setCurrentWidget(self.evaluationTab)
        self.training_finished.emit(info)

    # ------------------------------------------------------------------------------------------ health, lr finder
    def _build_health(self) -> None:
        """Overfitting warnings (core.training.health through HealthNotifier) and Run → Find learning rate."""
        self.healthNotifier = HealthNotifier(self)
        self.lrFindDialog = None

    def _on_find_lr_triggered(self) -> None:
        if self.controller.is_running() or self.datasetPanel.dataframe() is None or not self.modelBuilder.is_valid():
            return
        cfg = self.run_config()
        try:
            cfg.training.validate()
        except NNStudioError as exc:
            self.show_error("Cannot find a learning rate", str(exc))
            return
        request = self._data_request(None)

        def build_range_test():
            """Runs in the range test's thread, like a training run's factory."""
            from nnstudio.core.training.lr_find import LRFindRun

            data = self._prepare(request)
            model = build_model(cfg.layers, data.n_features, data.n_outputs, seed=cfg.training.seed)
            return LRFindRun(model, data, cfg.training)

        if self.lrFindDialog is None:
            from nnstudio.gui.lr_find_dialog import LRFindDialog

            self.lrFindDialog = LRFindDialog(build_range_test, self)
            self.lrFindDialog.lr_applied.connect(self._on_lrFindDialog_lr_applied)
        else:
            self.lrFindDialog.factory = build_range_test
        self.lrFindDialog.show()
        self.lrFindDialog.raise_()
        self.lrFindDialog.start()

    def _on_lrFindDialog_lr_applied(self, lr: float) -> None:
        spin = self.trainingPanel.learningRateSpin
        spin.setValue(lr)
        self.statusBar().showMessage(f"learning rate set to {spin.value():.3g} (from the range test)", 8000)

    def _on_evaluate_triggered(self) -> None:
        if self.evaluate_current(show=True, quiet=False):
            self.centralTabs.setCurrentWidget(self.evaluationTab)

    def _current_preprocessor(self):
        ckpt = self.loaded_checkpoint
        pre = ckpt.preprocessor if (ckpt is not None and self.model is ckpt.model) else None
        if self.last_run is not None and self.model is self.last_run.model:
            pre = self.last_run.data.preprocessor
        return pre

    def current_checkpoint(self) -> LoadedCheckpoint | None:
        """The current model with its preprocessing, as predict takes it (a loaded one, or the last run's)."""
        ckpt = self.loaded_checkpoint
        if ckpt is not None and self.model is ckpt.model:
            ckpt.threshold = self.decision_threshold if self.decision_threshold is not None else ckpt.threshold
            return ckpt
        if self.last_run is not None and self.model is self.last_run.model:
            return LoadedCheckpoint(Path(self.last_run.cfg.output.name), self.model, self.model.spec,
                                    self.last_run.data.preprocessor, threshold=self.decision_threshold)
        return None

    def evaluate_current(self, show: bool = True, quiet: bool = True) -> bool:
        """Evaluate the current model on the dataset panel's table (its test split), fill the evaluation tab.

        ``quiet``: a table without the model's columns is not an error (after opening a checkpoint, say);
        the tab keeps saying what it needs."""
        from nnstudio.core.results.evaluate import evaluate

        self._update_predict_panel()
        if self.model is None or self.datasetPanel.dataframe() is None:
            return False
        pre = self._current_preprocessor()
        df = self.datasetPanel.dataframe()
        if pre is not None and (pre.target not in df.columns or any(n not in df.columns for n in pre.feature_names)):
            if not quiet:
                missing = [n for n in [*pre.feature_names, pre.target] if n not in df.columns]
                self.show_error("Cannot evaluate", f"the dataset lacks the model's column(s) {', '.join(missing)}")
            return False
        training = self.trainingPanel.train_config()
        try:
            data = self.last_run.data if (self.last_run is not None and self.model is self.last_run.model) \
                else self.prepare_data(pre)
            result = evaluate(self.model, data, training.loss, threshold=0.5, class_weight=training.class_weight)
        except NNStudioError as exc:
            if not quiet:
                self.show_error("Cannot evaluate", str(exc))
            return False
        except RuntimeError as exc:
            if not quiet:
                self.show_error("Cannot evaluate", f"the model does not fit this dataset ({str(exc).splitlines()[0]})")
            return False
        self.evaluation = result
        self.last_evaluation = dict(result.table.get("test", {}))
        if show:
            title = self.last_run.cfg.output.name if (self.last_run is not None and self.model is self.last_run.model) \
                else (self.checkpoint_path.name if self.checkpoint_path else "model")
            self.evaluationPanel.show_evaluation(result, title, data.test.X)
            if result.task == "binary" and self.decision_threshold is not None:
                self.evaluationPanel.thresholdSlider.setValue(int(round(self.decision_threshold * 100)))
        self.statusBar().showMessage(f"test score: {result.test_summary()}", 0)
        return True

    def _update_predict_panel(self) -> None:
        ckpt = self.current_checkpoint()
        threshold = self.decision_threshold if self.decision_threshold is not None else (ckpt.threshold if ckpt else None)
        self.predictPanel.set_model(ckpt, threshold if ckpt is not None and ckpt.preprocessor is not None
                                    and ckpt.preprocessor.task == "binary" else None)
        self.actionPredict.setEnabled(not self.controller.is_running() and self.predictPanel.predictOpenButton.isEnabled())

    def _on_evaluation_threshold_kept(self, threshold: float) -> None:
        self.decision_threshold = float(threshold)
        self._update_predict_panel()
        self.statusBar().showMessage(f"decision threshold {threshold:.2f} kept: predictions use it and "
                                     "Save checkpoint stores it", 10000)

    def _on_predict_triggered(self) -> None:
        self.centralTabs.setCurrentWidget(self.predictPanel)
        self.predictPanel.predictOpenButton.click()

    def _on_predict_failed(self, message: str) -> None:
        self.show_error("Cannot predict", message)

    def _on_view_exported(self, path: str) -> None:
        self.statusBar().showMessage(f"exported {path}", 5000)

    def _on_export_failed(self, message: str) -> None:
        self.show_error("Cannot export", message)

    # ------------------------------------------------------------------------------------------ checkpoints
    def _on_open_checkpoint_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", self._last_dir(), CHECKPOINT_FILTER)
        if path:
            self.open_checkpoint(path)

    def open_checkpoint(self, path: str | Path) -> bool:
        """Load safely; on any problem show why and change nothing. A state_dict with unknowns asks first."""
        try:
            ckpt = load_checkpoint(path)
        except DatasetNotCheckpoint:
            self.open_dataset(path)
            return False
        except NNStudioError as exc:
            self.show_error("Cannot open checkpoint", str(exc))
            return False
        except Exception as exc:  # whatever else a hostile file provokes is still one sentence, never a traceback
            self.show_error("Cannot open checkpoint", file_failure(path, exc))
            return False
        if ckpt.inferred is not None and ckpt.inferred.needs_answers:
            self._ask_layers(ckpt)
            return False
        return self._apply_checkpoint(ckpt)

    def _ask_layers(self, ckpt: LoadedCheckpoint) -> None:
        dialog = InferredModelDialog(ckpt.path.name, ckpt.inferred, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._pending_inferred = ckpt
        dialog.accepted.connect(self._on_inferredModelDialog_accepted)
        dialog.rejected.connect(self._on_inferredModelDialog_rejected)
        dialog.open()
        self.layers_asked.emit(ckpt.path.name)

    def _on_inferredModelDialog_accepted(self) -> None:
        dialog, ckpt = self.sender(), self._pending_inferred
        self._pending_inferred = None
        if ckpt is None:
            return
        try:
            ckpt = reinfer(ckpt, dialog.answers(), dialog.order(), dialog.dropout_p())
        except (NNStudioError, ValueError) as exc:
            self.show_error("Cannot open checkpoint", f"{ckpt.path.name}: {exc}")
            return
        self._apply_checkpoint(ckpt)

    def _on_inferredModelDialog_rejected(self) -> None:
        self._pending_inferred = None
        self.statusBar().showMessage("nothing opened", 5000)

    def _on_open_model_class_triggered(self) -> None:
        ckpt, _ = QFileDialog.getOpenFileName(self, "Weights to open (state_dict or checkpoint)", self._last_dir(),
                                              CHECKPOINT_FILTER)
        if not ckpt:
            return
        py, _ = QFileDialog.getOpenFileName(self, "Python file with the model class", str(Path(ckpt).parent),
                                            "Python files (*.py)")
        if py:
            self.open_model_class(ckpt, py)

    def open_model_class(self, checkpoint: str | Path, py_path: str | Path) -> None:
        """Ask before running `py_path` (it is code); on Run, build its class and load the weights."""
        try:
            classes = classes_in(py_path)
            stored = stored_arguments(_read_dict(checkpoint), init_parameters(py_path, classes[0])) or {}
        except NNStudioError as exc:
            self.show_error("Cannot open model class", str(exc))
            return
        except Exception as exc:
            self.show_error("Cannot open model class", file_failure(checkpoint, exc))
            return
        text = ", ".join(f"{k}={v!r}" for k, v in stored.items())
        dialog = RunModelCodeDialog(Path(py_path).name, Path(checkpoint).name, classes, text, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._pending_model_class = (Path(checkpoint), Path(py_path))
        dialog.accepted.connect(self._on_runModelCodeDialog_accepted)
        dialog.open()

    def _on_runModelCodeDialog_accepted(self) -> None:
        dialog = self.sender()
        checkpoint, py_path = self._pending_model_class
        try:
            text = dialog.argumentsEdit.text().strip()
            arguments = parse_arguments(text) if text else None
            ckpt = open_with_class(checkpoint, py_path, dialog.classCombo.currentText(), arguments)
        except NNStudioError as exc:
            self.show_error("Cannot open model class", str(exc))
            return
        except Exception as exc:
            self.show_error("Cannot open model class", file_failure(py_path, exc))
            return
        self._apply_checkpoint(ckpt)

    def _apply_checkpoint(self, ckpt: LoadedCheckpoint) -> bool:
        path = ckpt.path
        self.loaded_checkpoint = ckpt
        self.model = ckpt.model
        self.model_unsaved = False
        self.checkpoint_path = Path(path)
        self.modelBuilder.set_layers(ckpt.layers, undoable=False)
        self.model = ckpt.model  # set_layers may have reset it through layers_changed
        cfg = ckpt.config or {}
        if cfg.get("training"):
            try:
                self.trainingPanel.set_train_config(RunConfig.from_dict({"training": cfg["training"]}).training)
            except NNStudioError:
                pass
        if ckpt.preprocessor is not None and self.datasetPanel.dataframe() is not None:
            pre = ckpt.preprocessor
            if pre.target in self.datasetPanel.dataframe().columns:
                self.datasetPanel.set_choices(target=pre.target, task=pre.task,
                                              exclude=_excluded_by(pre, self.datasetPanel.dataframe()))
        self._on_dataset_choices_changed()
        self._add_recent(path)
        self._remember_dir(path)
        notes = "; ".join(ckpt.notes)
        self.statusBar().showMessage(f"opened {Path(path).name}: {ckpt.n_parameters:,} parameters"
                                     + (f" — {notes}" if notes else ""), 10000)
        self.decision_threshold = ckpt.threshold
        self._update_model_status()
        self._update_can_train()
        if not self.evaluate_current(show=True) and self._evaluation_panel is not None:
            self._evaluation_panel.clear()
        self.checkpoint_loaded.emit(str(path))
        return True

    def _on_save_checkpoint_triggered(self) -> None:
        start = str(self.checkpoint_path or Path(self._last_dir()) / "model.pt")
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", start, CHECKPOINT_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".pt"
            self.save_checkpoint(path)

    def save_checkpoint(self, path: str | Path) -> bool:
        if self.model is None:
            self.show_error("Nothing to save", "Train a model or open a checkpoint first.")
            return False
        run = self.last_run if self.last_run is not None and self.last_run.model is self.model else None
        try:
            if run is not None:
                from nnstudio.core.model.checkpoint import plain

                obj = run.checkpoint_dict("last")  # resumable: the trainer's whole state
                obj["config"] = build_checkpoint(self.model, None, config=self.run_config().to_dict())["config"]
                test = self.evaluation.table.get("test", {}) if self.evaluation is not None else {}
                obj["metrics"].update(plain({f"test_{k}": v for k, v in test.items()}))
                obj["decision_threshold"] = (None if self.decision_threshold is None
                                             else float(self.decision_threshold))
            else:
                ckpt = self.loaded_checkpoint
                obj = build_checkpoint(self.model, ckpt.preprocessor if ckpt else None,
                                       config=ckpt.config if ckpt else {}, epoch=ckpt.epoch if ckpt else 0,
                                       metrics=ckpt.metrics if ckpt else {}, history=ckpt.history if ckpt else [],
                                       trainer_state=ckpt.trainer_state if ckpt else None,
                                       run_dir=ckpt.run_dir if ckpt else None,
                                       threshold=self.decision_threshold if self.decision_threshold is not None
                                       else (ckpt.threshold if ckpt else None))
            atomic_torch_save(obj, path)
        except (NNStudioError, OSError, TypeError) as exc:
            self.show_error("Cannot save checkpoint", str(exc))
            return False
        self.checkpoint_path = Path(path)
        self.model_unsaved = False
        self._add_recent(path)
        self._remember_dir(path)
        self.statusBar().showMessage(f"saved {path}", 8000)
        self.checkpoint_saved.emit(str(path))
        return True

    # ------------------------------------------------------------------------------------------ projects
    def _on_open_project_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_dir(), PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> bool:
        try:
            cfg = RunConfig.load(path)
            self.trainingPanel.check_train_config(cfg.training, Path(path).name)
        except NNStudioError as exc:
            self.show_error("Cannot open project", str(exc))
            return False
        except Exception as exc:  # whatever else a hostile file provokes is still one sentence
            self.show_error("Cannot open project", file_failure(path, exc))
            return False
        self.modelBuilder.set_layers(cfg.layers, undoable=True)
        self.trainingPanel.set_train_config(cfg.training)
        self.logdir = cfg.logdir
        self.data_seed = cfg.data.seed
        self.checkpoint_path = cfg.checkpoint_path
        if cfg.data.path:
            self._pending_project = cfg
            self.open_dataset(cfg.data_path)
        self._add_recent(path)
        self._remember_dir(path)
        self._project_path = Path(path)
        self._update_title(path)
        self.project_loaded.emit(str(path))
        return True

    def _on_save_project_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(Path(self._last_dir()) / "project.toml"),
                                              PROJECT_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".toml"
            self.save_project(path)

    def save_project(self, path: str | Path) -> bool:
        try:
            self.run_config().save(path)
        except (NNStudioError, OSError) as exc:
            self.show_error("Cannot save project", str(exc))
            return False
        self._add_recent(path)
        self._project_path = Path(path)
        self._update_title(path)
        self.statusBar().showMessage(f"saved project {path}", 8000)
        self.project_saved.emit(str(path))
        return True

    # ------------------------------------------------------------------------------------------ runs and following
    def _build_runs(self) -> None:
        """The runs dock (the log folder's runs, from every launch) and File → Follow run folder… (gui/window_runs.py)."""
        self.runs = WindowRuns(self)

    def follow_folder(self, folder: str | Path) -> bool:
        return self.runs.follow_folder(folder)

    # ------------------------------------------------------------------------------------------ view
    def _export_plot(self, plot, name: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", str(Path(self._last_dir()) / f"{name}.png"),
                                              "PNG images (*.png)")
        if not path:
            return
        try:
            plot.export_png(path)
        except OSError as exc:
            self.show_error("Cannot export plot", str(exc))
            return
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

    # ------------------------------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u for u in event.mimeData().urls()]
        paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
        event.acceptProposedAction()
        if not paths:
            self.show_error("Cannot open", "Only local files can be opened.")
        elif len(paths) > 1:
            self.show_error("One file at a time", f"{len(paths)} files were dropped; drop one dataset, "
                            "checkpoint or project at a time.")
        elif self.controller.is_running():
            self.show_error("Training in progress", "Stop the run before opening another file.")
        else:
            self.open_path(paths[0])

    # ------------------------------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.model_unsaved and not self._close_confirmed and not self.controller.is_running():
            event.ignore()  # asked without blocking the event loop; the answer closes again
            self.ask_save_before_close()
            return
        self.shutdown()
        self._save_settings()
        super().closeEvent(event)

    def ask_save_before_close(self) -> QMessageBox:
        """Save / Discard / Cancel for a trained model that was not saved (window-modal, not blocking)."""
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        box = QMessageBox(QMessageBox.Icon.Question, "Save the trained model?",
                          "The model trained in this session has not been saved. Save it before closing?",
                          buttons, self)
        box.setObjectName("saveBeforeCloseDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self._on_save_before_close_finished)
        box.open()
        return box

    def _on_save_before_close_finished(self, result: int) -> None:
        if result == QMessageBox.StandardButton.Save:
            if self.checkpoint_path is not None:
                saved = self.save_checkpoint(self.checkpoint_path)
            else:
                self._on_save_checkpoint_triggered()
                saved = not self.model_unsaved
            if not saved:
                return
        elif result != QMessageBox.StandardButton.Discard:
            return
        self._close_confirmed = True
        self.close()

    # ------------------------------------------------------------------------------------------ recovery
    def offer_recovery(self) -> QMessageBox | None:
        """At start: an unfinished run (crash, kill, window closed mid-run) in the log folder is offered
        back: its last checkpoint opened, with its history on the plots."""
        from nnstudio.core.training.recovery import find_unfinished

        found = find_unfinished(self.logdir)
        if not found:
            return None
        run_dir = found[0]
        box = QMessageBox(QMessageBox.Icon.Question, "Recover an unfinished run?",
                          f"The run {run_dir.name} did not finish. Open its last checkpoint "
                          f"({run_dir / 'last.pt'}) with its history?",
                          QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Discard, self)
        box.setObjectName("recoveryDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda result, d=run_dir: self._on_recovery_finished(d, result))
        box.open()
        self.recovery_offered.emit(str(run_dir))
        return box

    def _on_recovery_finished(self, run_dir: Path, result: int) -> None:
        from nnstudio.core.training.recovery import mark_finished

        if result == QMessageBox.StandardButton.Open:
            if not self.recover_run(run_dir):
                return
        mark_finished(run_dir)

    def recover_run(self, run_dir: Path) -> bool:
        if not self.open_checkpoint(Path(run_dir) / "last.pt"):
            return False
        self._show_history(self.loaded_checkpoint, Path(run_dir).name)
        return True

    def _show_history(self, ckpt: LoadedCheckpoint, name: str) -> None:
        rows = (ckpt.trainer_state or {}).get("history") or []
        if not rows:
            return
        self.lossPlot.start_run(name)
        self.lossPlot.add_epochs([r["step"] for r in rows], [r["train_loss"] for r in rows],
                                 [r.get("val_loss") for r in rows])
        self.metricsPlot.start_run(name)
        self.metricsPlot.add_epochs([r["epoch"] for r in rows], [dict(r.get("metrics") or {}) for r in rows])
        self.metricsPlot.add_lrs([r["epoch"] for r in rows], [r["lr"] for r in rows])
        self.lossPlot.redraw()
        self.metricsPlot.redraw()

    def shutdown(self) -> None:
        """Stop and join every thread and child process; safe to call twice."""
        running = self.controller.is_running()
        self.controller.shutdown()
        if running and self.last_run is not None and getattr(self.last_run, "autosave", None) is not None:
            from nnstudio.core.training.recovery import mark_unfinished

            mark_unfinished(self.last_run.run_dir)  # its last.pt is offered back at the next start
        if self.lrFindDialog is not None:
            self.lrFindDialog.controller.shutdown()
        shutdown = getattr(self.datasetPanel, "shutdown", None)
        if shutdown is not None:
            shutdown()
        self.tensorboard.stop()
        self.runs.shutdown()
        self.lossPlot.set_live(False)
        self.metricsPlot.set_live(False)


def about_text() -> str:
    import torch
    from PySide6 import QtCore, __version__ as pyside_version

    from nnstudio.core.devices import list_devices

    devices = "<br>".join(d.label for d in list_devices())
    return (f"<h3>nnstudio {__version__}</h3>"
            "<p>Build, train, inspect and save PyTorch networks.</p>"
            f"<p>torch {torch.__version__}<br>PySide6 {pyside_version}, Qt {QtCore.qVersion()}</p>"
            f"<p><b>Devices</b><br>{devices}</p>")
