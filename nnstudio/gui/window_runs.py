"""The window's side of the runs dock and of following a run folder: plots, opening, restoring.

Kept out of main_window.py: it owns the runs dock, its actions and the follow timer, and reaches the
window only through its public pieces (the plots' methods, open_checkpoint, show_error, the panels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QFileDialog

from nnstudio.core.errors import NNStudioError
from nnstudio.core.results.runs import RunRecord, is_run_dir, overlay_problem, read_curves
from nnstudio.gui.follow import FollowController, add_curves
from nnstudio.gui.runs_panel import RunsPanel
from nnstudio.gui.window_files import image_options



class RunsHost(Protocol):
    """What the runs tab and the follow controller ask of the window (passed in; nothing imports it back):
    its docks and plots, its actions and signals, and the few calls that open what a run left."""

    logdir: Any
    last_run: Any
    model: Any
    controller: Any
    lossPlot: Any
    metricsPlot: Any
    datasetDock: Any
    modelDock: Any
    modelBuilder: Any
    trainingPanel: Any
    data_seed: Any
    training_finished: Any
    project_loaded: Any
    checkpoint_saved: Any
    _pending_project: Any
    # set here: the tab and the Follow actions
    runsPanel: Any
    runsDock: Any
    actionFollowRun: Any
    actionOpenFollowedCheckpoint: Any
    actionStopFollowing: Any

    def _dock(self, title: str, name: str, widget: Any, area: Any) -> Any: ...
    def _action(self, name: str, text: str, slot: Any, *args: Any, **kwargs: Any) -> Any: ...
    def tabifyDockWidget(self, first: Any, second: Any) -> None: ...
    def statusBar(self) -> Any: ...
    def show_error(self, title: str, message: str) -> None: ...
    def open_checkpoint(self, path: Any) -> bool: ...
    def open_dataset(self, path: Any) -> None: ...


class _ReadCurves(QRunnable):
    """Reads runs' event files in a pool thread (~54 µs an event: a long run logged every step is seconds)."""

    def __init__(self, runs: list[RunRecord], done: Signal):
        super().__init__()
        self.runs, self.done = runs, done

    def run(self) -> None:
        try:
            self.done.emit((self.runs, [read_curves(r.path) for r in self.runs], ""))
        except Exception as exc:  # a folder removed or unreadable meanwhile
            self.done.emit((self.runs, None, str(exc)))


class WindowRuns(QObject):
    overlaid = Signal(object)  # the runs now on the plots
    _curves_read = Signal(object)  # from the pool thread

    def __init__(self, window: RunsHost):
        super().__init__(window)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._curves_read.connect(self._on_curves_read)
        self._reading = False
        self.window = w = window
        w.runsPanel = self.panel = RunsPanel()
        self.panel.setObjectName("runsPanel")
        # A tab beside Dataset and Model: a bottom dock took the height the training controls need on 1366x768.
        w.runsDock = w._dock("Runs", "runsDock", self.panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        w.tabifyDockWidget(w.modelDock, w.runsDock)
        w.datasetDock.raise_()
        self.panel.overlay_requested.connect(self._on_panel_overlay_requested)
        self.panel.open_requested.connect(self._on_panel_open_requested)
        self.panel.restore_requested.connect(self._on_panel_restore_requested)
        self.panel.set_logdir(w.logdir)
        w.training_finished.connect(self._on_window_training_finished)
        w.project_loaded.connect(self._on_window_project_loaded)
        w.checkpoint_saved.connect(self._on_window_checkpoint_saved)
        self.follow = FollowController(self)
        self.follow.run_started.connect(self._on_follow_run_started)
        self.follow.points_arrived.connect(self._on_follow_points_arrived)
        self.follow.status_changed.connect(self._on_follow_status_changed)
        self.follow.checkpoint_appeared.connect(self._on_follow_checkpoint_appeared)
        w.actionFollowRun = w._action("actionFollowRun", "&Follow run folder…", self._on_follow_run_triggered,
                                      tip="Plot a TensorBoard log folder live while another program writes it")
        w.actionOpenFollowedCheckpoint = w._action("actionOpenFollowedCheckpoint", "Open followed run's checkpoint",
                                                   self._on_open_followed_checkpoint_triggered)
        w.actionOpenFollowedCheckpoint.setEnabled(False)
        w.actionStopFollowing = w._action("actionStopFollowing", "Stop following", self.stop_following)
        w.actionStopFollowing.setEnabled(False)

    # ------------------------------------------------------------------------------------------ the runs dock
    def _on_window_training_finished(self, _info: dict) -> None:
        self.panel.refresh()

    def _on_window_checkpoint_saved(self, path: str) -> None:
        """The window's runs save no checkpoint themselves: the one saved from the run's model is the run's."""
        run = self.window.last_run
        if run is not None and run.tb is not None and run.model is self.window.model:
            run.tb.update_info(checkpoint=str(Path(path).resolve()))
            self.panel.refresh()

    def _on_window_project_loaded(self, _path: str) -> None:
        if self.panel.logdir != self.window.logdir:
            self.panel.set_logdir(self.window.logdir)

    def _on_controller_running_changed(self, running: bool) -> None:
        if running and self.follow.is_following():
            self.stop_following()  # the plots show the window's own run now
        self.window.actionFollowRun.setEnabled(not running)

    def _busy(self, what: str) -> bool:
        if self.window.controller.is_running():
            self.window.show_error("Training in progress", f"Stop the run before {what}.")
            return True
        return False

    def overlay_runs(self, runs: list[RunRecord]) -> bool:
        """These runs' curves, read from their event files, on the plots: the newest in front, the others faded."""
        w = self.window
        if self._busy("overlaying earlier runs"):
            return False
        problem = overlay_problem(runs)
        if problem:
            w.show_error("Cannot overlay these runs", problem + ".")
            return False
        if self._reading:
            return False
        self.stop_following()
        self._reading = True
        w.statusBar().showMessage(f"reading {len(runs)} run(s)…")
        self._pool.start(_ReadCurves(list(runs), self._curves_read))
        return True

    def _on_curves_read(self, result: tuple) -> None:
        """The curves are read: onto the plots, unless a run started in the window meanwhile."""
        w = self.window
        runs, all_curves, error = result
        self._reading = False
        if error:
            w.show_error("Cannot read runs", error)
            return
        if w.controller.is_running() or self.follow.is_following():
            return
        for plot in (w.lossPlot, w.metricsPlot):
            plot.clear_history(include_current=True)
        for run, curves in zip(runs, all_curves):
            w.lossPlot.start_run(run.name)
            w.metricsPlot.start_run(run.name)
            add_curves(w.lossPlot, w.metricsPlot, curves, whole_run=True)
        w.lossPlot.redraw()
        w.metricsPlot.redraw()
        w.statusBar().showMessage(f"showing {len(runs)} run(s) from {self.panel.logdir}", 8000)
        self.overlaid.emit(list(runs))

    def shutdown(self) -> None:
        self.follow.stop()
        self._pool.waitForDone()

    def _on_panel_overlay_requested(self, runs: list) -> None:
        self.overlay_runs(runs)

    def _on_panel_open_requested(self, path: str) -> None:
        if not self._busy("opening another model"):
            self.window.open_checkpoint(path)

    def _on_panel_restore_requested(self, run: RunRecord) -> None:
        self.restore_run(run)

    def restore_run(self, run: RunRecord) -> bool:
        """Put a run's whole configuration (dataset and its choices, layers, training settings) into the window."""
        w = self.window
        if self._busy("restoring another run's settings"):
            return False
        try:
            cfg = run.run_config()
        except NNStudioError as exc:
            w.show_error("Cannot restore run", str(exc))
            return False
        shown_task = w.datasetPanel.task() if w.datasetPanel.has_data() else None
        shown_path = w.datasetPanel.path()
        if run.task != shown_task or not shown_path or Path(shown_path).resolve() != cfg.data_path.resolve():
            # the curves on the plots are another dataset's or task's: they would sit beside the restored run's
            for plot in (w.lossPlot, w.metricsPlot):
                plot.clear_history(include_current=True)
                plot.redraw()
        w.modelBuilder.set_layers(cfg.layers, undoable=True)
        w.trainingPanel.set_train_config(cfg.training)
        w.data_seed = cfg.data.seed
        w.statusBar().showMessage(f"restored the settings of {run.name}", 8000)
        if cfg.data.path and not cfg.data_path.is_file() and not cfg.data_path.is_dir():
            w.show_error("Dataset not found", f"{cfg.data_path}: the dataset of run '{run.name}' is not there any "
                         "more; its model and training settings were restored. Open its dataset to train it again.")
            return False
        if cfg.data.path:
            w._pending_project = cfg  # the dataset's target, task, split and missing-value choices once it is read
            if cfg.data.image_column:  # a table of image paths, with the run's image keys
                w.image_options = image_options(cfg)
                w.open_image_table(cfg.data_path, cfg.data.image_column, cfg.data.target or None)
            elif cfg.data_path.is_dir():  # an image folder, with the run's image keys
                w.image_options = image_options(cfg)
                w.open_image_folder(cfg.data_path)
            else:
                w.open_dataset(cfg.data_path)
        return True

    # ------------------------------------------------------------------------------------------ following
    def _on_follow_run_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Follow run folder", str(self.window.logdir))
        if path:
            self.follow_folder(path)

    def follow_folder(self, folder: str | Path) -> bool:
        """Plot a log folder (its newest run) or one run's folder live while another process writes it."""
        w = self.window
        folder = Path(folder)
        if self._busy("following another one"):
            return False
        if not folder.is_dir():
            w.show_error("Cannot follow", f"{folder}: no such folder; choose a TensorBoard log folder "
                         "(the run's [output] logdir) or one run's folder inside it.")
            return False
        w.actionOpenFollowedCheckpoint.setEnabled(False)
        w.actionStopFollowing.setEnabled(True)
        w.statusBar().showMessage(f"following {folder}: waiting for a run…")
        self.panel.set_logdir(folder.parent if is_run_dir(folder) else folder)  # the dock lists its runs
        self.follow.follow(folder)
        return True

    def stop_following(self) -> None:
        w = self.window
        if self.follow.is_following():
            self.follow.stop()
            for plot in (w.lossPlot, w.metricsPlot):
                plot.set_live(False)
            w.statusBar().showMessage(f"stopped following {self.follow.folder}", 5000)
        w.actionStopFollowing.setEnabled(False)

    def _on_follow_run_started(self, name: str) -> None:
        """The followed run alone on the plots: the runs before it may be of another task or target."""
        w = self.window
        for plot in (w.lossPlot, w.metricsPlot):
            plot.clear_history(include_current=True)
            plot.start_run(name)
            plot.set_live(True)
        w.actionOpenFollowedCheckpoint.setEnabled(False)
        w.statusBar().showMessage(f"following {name} in {self.follow.folder}")
        self.panel.refresh()  # a new run in the folder

    def _on_follow_points_arrived(self, curves) -> None:
        add_curves(self.window.lossPlot, self.window.metricsPlot, curves)

    def _on_follow_status_changed(self, status: str) -> None:
        w = self.window
        if status and status != "running":
            for plot in (w.lossPlot, w.metricsPlot):
                plot.redraw()
            w.statusBar().showMessage(f"followed run {status}; still watching {self.follow.folder}", 0)
            self.panel.refresh()

    def _on_follow_checkpoint_appeared(self, path: str) -> None:
        self.window.actionOpenFollowedCheckpoint.setEnabled(True)
        self.panel.refresh()  # the run's test scores are in run.json with its checkpoint
        self.window.statusBar().showMessage(f"the followed run saved {path}: File → Open followed run's checkpoint", 0)

    def _on_open_followed_checkpoint_triggered(self) -> None:
        if self.follow.checkpoint is not None:
            self._on_panel_open_requested(str(self.follow.checkpoint))
