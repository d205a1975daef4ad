"""The Training dock: the settings of a fit (a `TrainConfig`), Train/Pause/Stop and the progress.

The panel only edits and shows: it emits ``train_requested`` and friends, and whoever owns the
`TrainingController` starts the run (``attach(controller)`` wires pause, resume, stop and progress).
Settings the panel has no widget for (loss, threads) pass through from the last `set_train_config`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from nnstudio.core.devices import list_devices, resolve_device
from nnstudio.core.training.engine import OPTIMIZERS, SCHEDULERS, TrainConfig
from nnstudio.core.config import check_training
from nnstudio.core.errors import ConfigError
from nnstudio.gui.widgets import LogSpinBox, WrappedLine

if TYPE_CHECKING:
    from nnstudio.gui.training_worker import TrainingController

__all__ = ["LogSpinBox", "TrainingPanel", "format_duration"]

MOMENTUM_OPTIMIZERS = ("SGD", "RMSprop")
SCHEDULER_LABELS = {"none": "None (constant)", "step": "Step decay", "cosine": "Cosine annealing",
                    "plateau": "Reduce on plateau", "onecycle": "One-cycle"}
SEED_RANDOM = -1


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class TrainingPanel(QWidget):
    """Settings of a fit, Train / Pause / Stop, and a progress bar with epoch, step and time left."""

    train_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    config_changed = Signal()  # any edit of a setting

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # Opaque: a progress update repaints the panel's own widgets, not the dock and the window beneath it
        # (which took a third of the GUI thread's painting during a fit of a tiny model, measured).
        self.setAutoFillBackground(True)
        self.setObjectName("trainingPanel")
        self._base = TrainConfig()
        self._running = False
        self._paused = False
        self._can_train = True
        self._cannot_train_reason = ""
        self._last_progress: dict[str, Any] | None = None
        self._loading = False
        self._build()
        self.set_train_config(TrainConfig())
        self._update_buttons()

    # ------------------------------------------------------------------------------------------ widgets
    def _named(self, widget: QWidget, name: str, tip: str = "") -> Any:
        widget.setObjectName(name)
        setattr(self, name, widget)
        if tip:
            widget.setToolTip(tip)
        return widget

    @staticmethod
    def _form(title: str) -> tuple[QGroupBox, QFormLayout]:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setContentsMargins(8, 6, 8, 8)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(4)
        return box, form

    def _build(self) -> None:
        # Data loop
        loop_box, loop = self._form("Data loop")
        epochs = self._named(QSpinBox(), "epochsSpin", "Passes over the training split")
        epochs.setRange(1, 1_000_000)
        batch = self._named(QSpinBox(), "batchSizeSpin", "Rows per optimisation step")
        batch.setRange(1, 10_000_000)
        shuffle = self._named(QCheckBox("Shuffle every epoch"), "shuffleCheck",
                              "Visit the training rows in a new random order each epoch")
        seed = self._named(QSpinBox(), "seedSpin", "Seed for weights and shuffling; the same seed repeats a run exactly")
        seed.setRange(SEED_RANDOM, 2_147_483_647)
        seed.setSpecialValueText("random")
        loop.addRow("&Epochs", epochs)
        loop.addRow("&Batch size", batch)
        loop.addRow("", shuffle)
        loop.addRow("S&eed", seed)

        # Optimizer
        opt_box, opt = self._form("Optimizer")
        optimizer = self._named(QComboBox(), "optimizerCombo", "How the weights follow the gradient")
        optimizer.addItems(list(OPTIMIZERS))
        lr = self._named(LogSpinBox(1e-6, 10.0), "learningRateSpin",
                         "Step size of the optimizer (1e-6 … 10); the arrows step 1-2-5 per decade")
        decay = self._named(LogSpinBox(1e-6, 1.0, allow_zero=True), "weightDecaySpin",
                            "L2 penalty on the weights; 0 turns it off")
        decay.setSpecialValueText("off")
        momentum = self._named(QDoubleSpinBox(), "momentumSpin", "Momentum (SGD and RMSprop only)")
        momentum.setRange(0.0, 1.0)
        momentum.setDecimals(3)
        momentum.setSingleStep(0.05)
        nesterov = self._named(QCheckBox("Nesterov"), "nesterovCheck", "Nesterov's look-ahead momentum (SGD only)")
        opt.addRow("&Optimizer", optimizer)
        opt.addRow("&Learning rate", lr)
        opt.addRow("&Weight decay", decay)
        momentum_row = QHBoxLayout()  # one row, not two: the column fits 1280x720 (see gui/dock_layout.py)
        momentum_row.setContentsMargins(0, 0, 0, 0)
        momentum_row.addWidget(momentum, 1)
        momentum_row.addWidget(nesterov, 0)
        opt.addRow("&Momentum", momentum_row)
        opt.labelForField(momentum_row).setBuddy(momentum)

        # Schedule & regularisation
        sched_box, sched = self._form("Schedule && regularisation")
        scheduler = self._named(QComboBox(), "schedulerCombo", "How the learning rate changes during the fit")
        for name in SCHEDULERS:
            scheduler.addItem(SCHEDULER_LABELS.get(name, name), name)
        step_size = self._named(QSpinBox(), "stepSizeSpin", "Epochs between learning-rate decays")
        step_size.setRange(1, 1_000_000)
        step_size.setSuffix(" epochs")
        gamma = self._named(QDoubleSpinBox(), "gammaSpin", "Factor the learning rate is multiplied by at each decay")
        gamma.setRange(0.001, 1.0)
        gamma.setDecimals(3)
        gamma.setSingleStep(0.05)
        factor = self._named(QDoubleSpinBox(), "plateauFactorSpin", "Factor applied when validation loss stops improving")
        factor.setRange(0.001, 0.999)
        factor.setDecimals(3)
        factor.setSingleStep(0.05)
        patience = self._named(QSpinBox(), "plateauPatienceSpin", "Epochs without improvement before the rate drops")
        patience.setRange(0, 100_000)
        patience.setSuffix(" epochs")
        early = self._named(QSpinBox(), "earlyStoppingSpin",
                            "Stop after this many epochs without a better validation loss, and keep the best weights")
        early.setRange(0, 100_000)
        early.setSpecialValueText("off")
        early.setSuffix(" epochs")
        clip = self._named(QDoubleSpinBox(), "gradClipSpin", "Clip the gradient norm to this value before each step")
        clip.setRange(0.0, 1_000_000.0)
        clip.setDecimals(2)
        clip.setSingleStep(0.5)
        clip.setSpecialValueText("off")
        sched.addRow("Sc&heduler", scheduler)
        sched.addRow("Step si&ze", step_size)
        sched.addRow("&Decay factor", gamma)
        sched.addRow("&Factor", factor)
        sched.addRow("&Patience", patience)
        sched.addRow("Early s&topping", early)
        sched.addRow("&Gradient clip", clip)
        class_weight = self._named(QComboBox(), "classWeightCombo",
                                   "Balanced weights the loss by inverse training-class frequency (classification), "
                                   "so a rare class counts as much as a common one")
        class_weight.addItem("None", "none")
        class_weight.addItem("Balanced", "balanced")
        sched.addRow("C&lass weight", class_weight)
        self._sched_form = sched

        # Device
        dev_box, dev = self._form("Device")
        device = self._named(QComboBox(), "deviceCombo", "")
        device.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        device.setMinimumContentsLength(12)
        self._fill_devices()
        dev.addRow(device)
        self._align_labels((loop, opt, sched))

        settings = QWidget()
        settings.setObjectName("trainingSettings")
        col = QVBoxLayout(settings)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(4)  # compact: every setting and Train fit a 1280x720 screen with Code tabbed behind
        for box in (loop_box, opt_box, sched_box, dev_box):
            col.addWidget(box)
        col.addStretch(1)
        self._settings = settings
        scroll = QScrollArea()
        scroll.setObjectName("trainingScroll")
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._scroll = scroll

        # Run controls: always visible under the settings
        style = self.style()
        train = self._named(QPushButton("Train"), "trainButton", "Train the model (F5)")
        train.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        train.setDefault(True)
        pause = self._named(QPushButton("Pause"), "pauseButton", "Pause training; Resume continues where it left off")
        pause.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        stop = self._named(QPushButton("Stop"), "stopButton", "Stop after the current batch (Shift+F5)")
        stop.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        for button in (train, pause, stop):
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(train, 3)
        buttons.addWidget(pause, 2)
        buttons.addWidget(stop, 2)
        bar = self._named(QProgressBar(), "progressBar")
        bar.setRange(0, 1)
        bar.setValue(0)
        bar.setTextVisible(True)
        label = self._named(QLabel("Ready to train"), "progressLabel")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        run_box = self._run_box = QFrame()
        run_box.setObjectName("runControls")
        run_col = QVBoxLayout(run_box)
        run_col.setContentsMargins(0, 6, 0, 0)
        run_col.setSpacing(6)
        run_col.addLayout(buttons)
        run_col.addWidget(bar)
        run_col.addWidget(WrappedLine(label))

        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(6)
        outer.addWidget(scroll, 1)
        outer.addWidget(run_box, 0)

        # reactions
        optimizer.currentIndexChanged.connect(self._on_optimizer_changed)
        scheduler.currentIndexChanged.connect(self._on_scheduler_changed)
        train.clicked.connect(self._on_train_clicked)
        pause.clicked.connect(self._on_pause_clicked)
        stop.clicked.connect(self._on_stop_clicked)
        for spin in (epochs, batch, seed, lr, decay, momentum, step_size, gamma, factor, patience, early, clip):
            spin.valueChanged.connect(self._on_setting_changed)
        for check in (shuffle, nesterov):
            check.toggled.connect(self._on_setting_changed)
        for combo in (optimizer, scheduler, device, class_weight):
            combo.currentIndexChanged.connect(self._on_setting_changed)

    @staticmethod
    def _align_labels(forms) -> None:
        """One label column width for every section, so the fields line up down the dock."""
        labels = [form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()
                  for form in forms for row in range(form.rowCount())
                  if form.itemAt(row, QFormLayout.ItemRole.LabelRole) is not None]
        width = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(width)

    def _fill_devices(self) -> None:
        combo: QComboBox = self.deviceCombo
        try:
            auto = str(resolve_device("auto"))
        except Exception:  # a broken driver must not keep the panel from opening
            auto = "cpu"
        combo.addItem("Auto", "auto")
        combo.setItemData(0, f"Picks CUDA, then MPS, then the CPU (here: {auto})", Qt.ItemDataRole.ToolTipRole)
        for info in list_devices():
            combo.addItem(info.label, info.key)
            combo.setItemData(combo.count() - 1, info.key, Qt.ItemDataRole.ToolTipRole)
        combo.setToolTip(f"Where training runs; Auto uses {auto} here")

    def sizeHint(self):
        """Tall enough to show every setting without scrolling; dock-narrow."""
        hint = super().sizeHint()
        margins = self.layout().contentsMargins()
        height = (self._settings.sizeHint().height() + self._run_box.sizeHint().height()
                  + self.layout().spacing() + margins.top() + margins.bottom())
        hint.setHeight(max(hint.height(), height))
        hint.setWidth(max(340, min(hint.width(), 420)))
        return hint

    def minimumSizeHint(self):
        """As wide as the settings need beside their scroll bar: the dock scrolls sideways before it clips."""
        hint = super().minimumSizeHint()
        margins = self.layout().contentsMargins()
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        hint.setWidth(max(hint.width(), self._settings.minimumSizeHint().width() + bar
                          + margins.left() + margins.right()))
        return hint

    # ------------------------------------------------------------------------------------------ config
    def train_config(self) -> TrainConfig:
        """The settings as shown; fields without a widget come from the last `set_train_config`."""
        seed = self.seedSpin.value()
        return dataclasses.replace(
            copy.deepcopy(self._base),
            epochs=self.epochsSpin.value(),
            batch_size=self.batchSizeSpin.value(),
            shuffle=self.shuffleCheck.isChecked(),
            optimizer=self.optimizerCombo.currentText(),
            lr=self.learningRateSpin.value(),
            weight_decay=self.weightDecaySpin.value(),
            momentum=self.momentumSpin.value(),
            nesterov=self.nesterovCheck.isChecked(),
            scheduler=self.schedulerCombo.currentData(),
            step_size=self.stepSizeSpin.value(),
            gamma=self.gammaSpin.value(),
            plateau_factor=self.plateauFactorSpin.value(),
            plateau_patience=self.plateauPatienceSpin.value(),
            early_stopping=self.earlyStoppingSpin.value(),
            grad_clip=self.gradClipSpin.value(),
            seed=None if seed == SEED_RANDOM else seed,
            device=self.deviceCombo.currentData(),
            class_weight=self.classWeightCombo.currentData(),
        )

    def check_train_config(self, cfg: TrainConfig, source: str = "project") -> None:
        """Raise ConfigError naming each value these controls cannot hold (and its range); they never clamp one."""
        check_training(cfg, source)  # the same validation as `nnstudio train`

    def set_train_config(self, cfg: TrainConfig) -> None:
        """Show `cfg`; a value outside the controls' ranges raises ConfigError and changes nothing."""
        self.check_train_config(cfg)
        self._base = copy.deepcopy(cfg)
        self._loading = True
        try:
            self.epochsSpin.setValue(cfg.epochs)
            self.batchSizeSpin.setValue(cfg.batch_size)
            self.shuffleCheck.setChecked(cfg.shuffle)
            self.seedSpin.setValue(SEED_RANDOM if cfg.seed is None else cfg.seed)
            self.optimizerCombo.setCurrentIndex(max(0, self.optimizerCombo.findText(cfg.optimizer)))
            self.learningRateSpin.setValue(cfg.lr)
            self.weightDecaySpin.setValue(cfg.weight_decay)
            self.momentumSpin.setValue(cfg.momentum)
            self.nesterovCheck.setChecked(cfg.nesterov)
            self.schedulerCombo.setCurrentIndex(max(0, self.schedulerCombo.findData(cfg.scheduler)))
            self.stepSizeSpin.setValue(cfg.step_size)
            self.gammaSpin.setValue(cfg.gamma)
            self.plateauFactorSpin.setValue(cfg.plateau_factor)
            self.plateauPatienceSpin.setValue(cfg.plateau_patience)
            self.earlyStoppingSpin.setValue(cfg.early_stopping)
            self.gradClipSpin.setValue(cfg.grad_clip)
            self._select_device(cfg.device)
            self.classWeightCombo.setCurrentIndex(max(0, self.classWeightCombo.findData(cfg.class_weight)))
        finally:
            self._loading = False
        self._on_optimizer_changed()
        self._on_scheduler_changed()

    def _select_device(self, key: str) -> None:
        combo: QComboBox = self.deviceCombo
        key = (key or "auto").strip().lower()
        index = combo.findData(key)
        if index < 0 and key == "cuda":
            index = combo.findData("cuda:0")
        if index < 0:  # asked for by a project made elsewhere; training will say it is missing
            combo.addItem(f"{key} (not on this machine)", key)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    # ------------------------------------------------------------------------------------------ run state
    def set_running(self, running: bool) -> None:
        self._running = running
        self._paused = False
        if running:
            self._last_progress = None
            self.progressBar.setRange(0, 1)
            self.progressBar.setValue(0)
            self.progressLabel.setText("Starting…")
            self.progressLabel.setToolTip("")
        self._settings.setEnabled(not running)
        self._update_buttons()

    def set_paused(self, paused: bool) -> None:
        self._paused = paused and self._running
        self._update_buttons()

    def set_can_train(self, ok: bool, reason: str = "") -> None:
        """Train is disabled (with `reason` as its tooltip) until the data and model are usable."""
        self._can_train = ok
        self._cannot_train_reason = "" if ok else reason
        self._update_buttons()
        if not self._running and self._last_progress is None:  # before any run, say what blocks Train
            self.progressLabel.setText("Ready to train" if ok else (reason or "Training is not possible yet"))

    def is_running(self) -> bool:
        return self._running

    def _update_buttons(self) -> None:
        self.trainButton.setEnabled(self._can_train and not self._running)
        self.trainButton.setToolTip("Train the model (F5)" if self._can_train
                                    else self._cannot_train_reason or "Training is not possible yet")
        self.pauseButton.setEnabled(self._running)
        self.stopButton.setEnabled(self._running)
        style = self.style()
        if self._paused:
            self.pauseButton.setText("Resume")
            self.pauseButton.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        else:
            self.pauseButton.setText("Pause")
            self.pauseButton.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause))

    # ------------------------------------------------------------------------------------------ progress
    @Slot(dict)
    def on_progress(self, progress: dict) -> None:
        """`progress` as `TrainingController.progress` sends it: epoch, epochs, step, total_steps, elapsed, eta."""
        self._last_progress = dict(progress)
        total = max(1, min(int(progress.get("total_steps", 1)), 2**31 - 1))
        step = max(0, min(int(progress.get("step", 0)), total))
        bar = self.progressBar
        # QProgressBar.setValue repaints at once when the change shows; with updates off, re-enabling them
        # posts one update instead, painted with the label's in the next pass.
        bar.setUpdatesEnabled(False)
        try:
            bar.setRange(0, total)
            bar.setValue(step)
        finally:
            bar.setUpdatesEnabled(True)
        self.progressLabel.setText(self._position_text(progress, with_eta=True))

    @Slot(str)
    def on_finished(self, reason: str) -> None:
        """End of a run: "completed" and "early_stopping" fill the bar; "stopped" and "failed" leave it."""
        p = self._last_progress or {}
        where = self._position_text(p) if p else ""
        elapsed = f" · {format_duration(p['elapsed'])}" if p.get("elapsed") is not None else ""
        if reason in ("completed", "early_stopping"):
            self.progressBar.setValue(self.progressBar.maximum())
        if reason == "completed":
            text = f"Completed · {where}{elapsed}" if where else "Completed"
        elif reason == "early_stopping":
            text = f"Stopped early (no improvement) at {where}" if where else "Stopped early (no improvement)"
        elif reason == "stopped":
            text = f"Stopped at {where}" if where else "Stopped"
        elif reason == "failed":
            text = f"Failed at {where}" if where else "Failed"
        else:
            text = reason
        self.progressLabel.setText(text)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.on_finished("failed")
        self.progressLabel.setToolTip(message)

    @staticmethod
    def _position_text(p: dict, with_eta: bool = False) -> str:
        before = max(0, int(p.get("first_epoch", 1)) - 1)  # a continued run counts on from its checkpoint's epoch
        epochs = p.get("epochs")
        last = epochs + before if isinstance(epochs, int) else "?"
        text = f"epoch {p.get('epoch', 0) + before}/{last} · step {p.get('step', 0)}/{p.get('total_steps', '?')}"
        if with_eta and p.get("eta") is not None:
            text += f" · {format_duration(p['eta'])} left"
        return text

    # ------------------------------------------------------------------------------------------ wiring
    def attach(self, controller: "TrainingController") -> None:
        """Wire Pause/Resume/Stop and the progress display to a controller (Train stays with the owner,
        who builds the run)."""
        self.pause_requested.connect(controller.pause)
        self.resume_requested.connect(controller.resume)
        self.stop_requested.connect(controller.stop)
        controller.running_changed.connect(self.set_running)
        controller.paused_changed.connect(self.set_paused)
        controller.progress.connect(self.on_progress)
        controller.fit_finished.connect(self._on_controller_fit_finished)
        controller.fit_failed.connect(self.on_failed)

    @Slot(dict)
    def _on_controller_fit_finished(self, payload: dict) -> None:
        self.on_finished(payload.get("reason") or payload.get("status") or "completed")

    # ------------------------------------------------------------------------------------------ reactions
    @Slot()
    def _on_train_clicked(self) -> None:
        if self._can_train and not self._running:
            self.train_requested.emit()

    @Slot()
    def _on_pause_clicked(self) -> None:
        if not self._running:
            return
        if self._paused:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    @Slot()
    def _on_stop_clicked(self) -> None:
        if self._running:
            self.stop_requested.emit()

    @Slot()
    def _on_optimizer_changed(self) -> None:
        name = self.optimizerCombo.currentText()
        self.momentumSpin.setEnabled(name in MOMENTUM_OPTIMIZERS)
        self.nesterovCheck.setEnabled(name == "SGD")

    @Slot()
    def _on_scheduler_changed(self) -> None:
        name = self.schedulerCombo.currentData()
        form = self._sched_form
        for widget, visible in ((self.stepSizeSpin, name == "step"), (self.gammaSpin, name == "step"),
                                (self.plateauFactorSpin, name == "plateau"),
                                (self.plateauPatienceSpin, name == "plateau")):
            form.setRowVisible(widget, visible)

    @Slot()
    def _on_setting_changed(self) -> None:
        if not self._loading:
            self.config_changed.emit()
