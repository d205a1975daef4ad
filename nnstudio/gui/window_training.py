"""Run control in the window: the dataset and model turned into a run config, Train / Pause / Resume / Stop /
Continue, the worker's signals received in the GUI thread and shown in the plots, the health watch and the
learning-rate finder."""

from __future__ import annotations

import copy
import math
from pathlib import Path

from PySide6.QtCore import QTimer

from nnstudio.core.model.checkpoint import LoadedCheckpoint
from nnstudio.core.config import RunConfig
from nnstudio.core.data import PreparedData, model_io_size, prepare
from nnstudio.core.errors import NNStudioError
from nnstudio.core.run import TrainingRun, model_for
from nnstudio.gui.health_notice import HealthNotifier
from nnstudio.gui.window_settings import NEXT_PASS_MS, TENSORBOARD_STEPS_PER_SECOND


def _inputs(shape) -> str:
    """A model's input as the status bar says it: 64 inputs, or 1 × 8 × 8 images."""
    return " × ".join(map(str, shape)) + " images" if isinstance(shape, tuple) else f"{shape} inputs"


class RunControl:
    """Starting, pausing, stopping and continuing runs, and showing what the worker sends."""

    def _io_shape(self) -> tuple[int | None, int | None]:
        """Inputs and outputs the model must have for the dataset as currently configured
        (an image folder: its (C, H, W) and its number of classes)."""
        df = self.datasetPanel.dataframe()
        images = self.datasetPanel.images()
        if df is None and images is None:
            return None, None
        ckpt = self.loaded_checkpoint
        if ckpt is not None and ckpt.preprocessor is not None and self.model is ckpt.model \
                and hasattr(ckpt.preprocessor, "input_shape") == (images is not None):  # an image model on images
            pre = ckpt.preprocessor
            return getattr(pre, "input_shape", pre.n_features), pre.n_outputs
        if images is not None:
            size = self.image_options.get("image_size") or images.get("image_size")
            channels = self.image_options.get("channels")
            channels = images["channels"] if channels in (None, "auto") else int(channels)
            return ((channels, int(size[0]), int(size[1])) if size else None), len(images["classes"])
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
        if dp.images() is not None:  # an image folder: decoded by the core from the run config's [data] keys
            o = self.image_options
            return ("images", dp.path(), tuple(dp.split()), self.data_seed, repr(o), preprocessor)
        return (dp.dataframe(), dp.target(), dp.task_choice(), tuple(dp.split()), self.data_seed, dp.missing(),
                preprocessor, tuple(dp.features()))

    def _prepare(self, request: tuple) -> PreparedData:
        cached = self._prepared
        if isinstance(request[0], str):  # ("images", …): an image folder
            if cached is not None and isinstance(cached[0][0], str) and cached[0][:5] == request[:5]:
                return cached[1]
            from nnstudio.core.run import load_data

            cfg = RunConfig()
            cfg.data.path = request[1]
            cfg.data.split = list(request[2])
            cfg.data.seed = request[3]
            for key, value in self.image_options.items():
                setattr(cfg.data, key, value)
            data = load_data(cfg)
            self._prepared = (request, data)
            return data
        if cached is not None and not isinstance(cached[0][0], str):
            key = cached[0]
            # The table and the preprocessing by identity (the table is never changed in place), choices by value.
            if key[0] is request[0] and key[6] is request[6] and key[1:6] == request[1:6] and key[7:] == request[7:]:
                return cached[1]
        df, target, task, split, seed, missing, preprocessor, features = request
        data = prepare(df, target, task, list(split), seed, missing, preprocessor=preprocessor, features=list(features))
        self._prepared = (request, data)
        return data

    def _on_dataset_choices_changed(self) -> None:
        if not self.datasetPanel.has_data():
            return
        n_in, n_out = self._io_shape()
        self.modelBuilder.set_io(n_in, n_out)
        self._update_model_status()  # the parameter count follows the inputs (a column ignored, say)
        images = self.datasetPanel.images()
        if images is not None and n_in is not None:
            self.datasetStatus.setText(f"{Path(self.datasetPanel.path()).name}: {images['images']:,} images · "
                                       f"{' × '.join(map(str, n_in))} · {n_out} classes")
        elif n_in is not None:
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
        built_for = getattr(self.model, "input_shape", None) or getattr(self.model, "in_features", None)  # (C, H, W)
        wanted = self.modelBuilder.model.io()[0]
        if trained and built_for is not None and wanted is not None and built_for != wanted:
            # the columns changed since: the count is the builder's for these inputs, the weights are for others
            trained = f" · trained weights for {_inputs(built_for)}, the data now gives {_inputs(wanted)}: train again"
        self.modelStatus.setText(f"{len(summary.rows)} layers · {summary.total_params:,} parameters{trained}"
                                 if summary.ok else "model invalid")

    def _update_can_train(self) -> None:
        running = self.controller.is_running() if hasattr(self, "controller") else False
        reason = ""
        if not self.datasetPanel.has_data():
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
        self.actionEvaluate.setEnabled(not running and self.model is not None and self.datasetPanel.has_data())
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
        if dp.images() is not None:
            cfg.data.split = list(dp.split())
            for key, value in self.image_options.items():
                setattr(cfg.data, key, copy.deepcopy(value))
        elif dp.dataframe() is not None:
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
        if not self.datasetPanel.has_data() or not self.modelBuilder.is_valid():
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
            model = model_for(cfg, data)  # an image model: (C, H, W) in, the normalisation folded in
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
        if self.controller.is_running() or not self.datasetPanel.has_data() or not self.modelBuilder.is_valid():
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
            model = model_for(cfg, data)
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
