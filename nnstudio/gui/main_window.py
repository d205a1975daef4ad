"""The studio window: dataset panel, model builder and training controls around the plots.

Thin by design: it shows core objects and turns user actions into core calls. Training runs in a
QThread through `TrainingController`; its signals arrive here, in the GUI thread, as plain values.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QMainWindow, QMessageBox)

from nnstudio.core.model.checkpoint import LoadedCheckpoint
from nnstudio.core.config import RunConfig
from nnstudio.core.data import PreparedData
from nnstudio.core.errors import NNStudioError
from nnstudio.core.model.spec import SpecModel, default_layers
from nnstudio.core.run import TrainingRun
from nnstudio.gui.tensorboard_launcher import TensorBoardLauncher
from nnstudio.gui.training_worker import TrainingController
from nnstudio.gui.window_actions import WindowActions, about_text  # noqa: F401  (about_text: re-exported)
from nnstudio.gui.window_files import WindowFiles
from nnstudio.gui.window_layout import WindowLayout
from nnstudio.gui.window_runs import WindowRuns
from nnstudio.gui.window_training import RunControl
from nnstudio.resources import resource_path
from nnstudio.gui.window_settings import default_logdir


class MainWindow(WindowLayout, WindowActions, WindowFiles, RunControl, QMainWindow):
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
        self.image_options: dict = {}  # [data] image keys of the opened project (image_size, channels, augment, …)
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

    def _connect(self) -> None:
        dp, mb, tp, c = self.datasetPanel, self.modelBuilder, self.trainingPanel, self.controller
        dp.dataset_loaded.connect(self._on_dataset_loaded)
        dp.load_failed.connect(self._on_dataset_load_failed)
        dp.choices_changed.connect(self._on_dataset_choices_changed)
        dp.image_table_found.connect(self._on_datasetPanel_image_table_found)
        dp.image_label_chosen.connect(self._on_datasetPanel_image_label_chosen)
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
        if self.model is None or not self.datasetPanel.has_data():
            return False
        pre = self._current_preprocessor()
        df = self.datasetPanel.dataframe()
        if df is not None and pre is not None and (pre.target not in df.columns or any(n not in df.columns for n in pre.feature_names)):
            if not quiet:
                missing = [n for n in [*pre.feature_names, pre.target] if n not in df.columns]
                self.show_error("Cannot evaluate", f"the dataset lacks the model's column(s) {', '.join(missing)}")
            return False
        training = self.trainingPanel.train_config()
        try:
            data = self.last_run.data if (self.last_run is not None and self.model is self.last_run.model) \
                else self.prepare_data(pre)
            mismatch = self._outputs_mismatch(data)
            if mismatch:  # say it, never evaluate (a loss of mismatched shapes raises from inside torch)
                self.evaluationPanel.clear()
                if quiet:
                    self.statusBar().showMessage(mismatch, 0)
                else:
                    self.show_error("Cannot evaluate", mismatch)
                return False
            result = evaluate(self.model, data, training.loss, threshold=0.5, class_weight=training.class_weight)
        except NNStudioError as exc:
            if not quiet:
                self.show_error("Cannot evaluate", str(exc))
            return False
        except (RuntimeError, ValueError) as exc:
            if not quiet:
                self.show_error("Cannot evaluate", f"the model does not fit this dataset ({str(exc).splitlines()[0]})")
            return False
        self.evaluation = result
        self.last_evaluation = dict(result.table.get("test", {}))
        if show:
            title = self.last_run.cfg.output.name if (self.last_run is not None and self.model is self.last_run.model) \
                else (self.checkpoint_path.name if self.checkpoint_path else "model")
            report = data.report if isinstance(getattr(data, "report", None), dict) else {}
            files = ([Path(report["root"]) / f for f in report["files"]["test"]]
                     if report.get("kind") == "image" and report.get("files") else None)
            self.evaluationPanel.show_evaluation(result, title, data.test.X, test_files=files)
            if result.task == "binary" and self.decision_threshold is not None:
                self.evaluationPanel.thresholdSlider.setValue(int(round(self.decision_threshold * 100)))
        self.statusBar().showMessage(f"test score: {result.test_summary()}", 0)
        return True

    def _outputs_mismatch(self, data) -> str:
        """A sentence when the model's outputs cannot be the dataset target's (3 outputs, a binary target)."""
        have = getattr(self.model, "n_outputs", None)
        if have is None or have == data.n_outputs:
            return ""
        name = self.checkpoint_path.name if self.checkpoint_path else "the model"
        target = self.datasetPanel.target()
        return (f"{name}: the model has {have} outputs, but the target '{target}' ({data.task}) needs "
                f"{data.n_outputs}; it is open but not evaluated: choose a target with {have} classes in the "
                "dataset panel, or train a model for this one")

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

    # ------------------------------------------------------------------------------------------ runs and following
    def _build_runs(self) -> None:
        """The runs dock (the log folder's runs, from every launch) and File → Follow run folder… (gui/window_runs.py)."""
        self.runs = WindowRuns(self)

    def follow_folder(self, folder: str | Path) -> bool:
        return self.runs.follow_folder(folder)

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
        if getattr(self, "_experiments_panel", None) is not None:
            self._experiments_panel.shutdown()
        shutdown = getattr(self.datasetPanel, "shutdown", None)
        if shutdown is not None:
            shutdown()
        self.tensorboard.stop()
        self.runs.shutdown()
        self.lossPlot.set_live(False)
        self.metricsPlot.set_live(False)
