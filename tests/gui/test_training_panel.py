"""The Training panel: settings ↔ TrainConfig, enabled states, buttons, progress, and a real run."""

from __future__ import annotations

import dataclasses
import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QWidget

from nnstudio.core.config import RunConfig
from nnstudio.core.data import load_dataset
from nnstudio.core.devices import DeviceInfo
from nnstudio.core.training.engine import TrainConfig
from nnstudio.core.run import TrainingRun
from nnstudio.gui import training_panel as panel_mod
from nnstudio.gui.training_panel import LogSpinBox, TrainingPanel, format_duration
from nnstudio.gui.training_worker import TrainingController

NAMES = ("deviceCombo", "epochsSpin", "batchSizeSpin", "shuffleCheck", "optimizerCombo", "learningRateSpin",
         "weightDecaySpin", "momentumSpin", "nesterovCheck", "schedulerCombo", "earlyStoppingSpin", "gradClipSpin",
         "seedSpin", "trainButton", "pauseButton", "stopButton", "progressBar", "progressLabel")


@pytest.fixture
def panel(qtbot):
    widget = TrainingPanel()
    qtbot.addWidget(widget)
    return widget


def test_widgets_are_found_by_their_object_names(panel):
    for name in NAMES:
        assert panel.findChild(QWidget, name) is getattr(panel, name), name
    assert isinstance(panel.learningRateSpin, QDoubleSpinBox)


def test_defaults_match_train_config_defaults(panel):
    assert panel.train_config() == TrainConfig()
    assert panel.deviceCombo.itemText(0) == "Auto" and panel.deviceCombo.currentData() == "auto"
    assert [panel.optimizerCombo.itemText(i) for i in range(panel.optimizerCombo.count())] == \
        ["SGD", "Adam", "AdamW", "RMSprop"]
    assert [panel.schedulerCombo.itemData(i) for i in range(panel.schedulerCombo.count())] == \
        ["none", "step", "cosine", "plateau", "onecycle"]
    assert panel.earlyStoppingSpin.text() == "off" and panel.gradClipSpin.text() == "off"


def test_device_combo_lists_auto_then_every_device(qtbot, monkeypatch):
    devices = [DeviceInfo("cpu", "CPU"), DeviceInfo("cuda:0", "CUDA 0: NVIDIA H200 (139.8 GiB)", 150 * 2**30),
               DeviceInfo("cuda:1", "CUDA 1: NVIDIA L4 (22.0 GiB)", 22 * 2**30), DeviceInfo("mps", "Apple MPS")]
    monkeypatch.setattr(panel_mod, "list_devices", lambda: devices)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    combo: QComboBox = panel.deviceCombo
    assert [combo.itemText(i) for i in range(combo.count())] == ["Auto"] + [d.label for d in devices]
    assert [combo.itemData(i) for i in range(combo.count())] == ["auto", "cpu", "cuda:0", "cuda:1", "mps"]
    assert combo.currentIndex() == 0
    combo.setCurrentIndex(3)
    assert panel.train_config().device == "cuda:1"


def test_train_config_reflects_widget_edits(qtbot, panel):
    panel.epochsSpin.setValue(7)
    panel.batchSizeSpin.setValue(32)
    panel.shuffleCheck.setChecked(False)
    panel.optimizerCombo.setCurrentText("SGD")
    panel.learningRateSpin.clear()
    qtbot.keyClicks(panel.learningRateSpin, "2.5e-4")
    qtbot.keyClick(panel.learningRateSpin, Qt.Key.Key_Enter)
    panel.weightDecaySpin.setValue(1e-5)
    panel.momentumSpin.setValue(0.8)
    panel.nesterovCheck.setChecked(True)
    panel.schedulerCombo.setCurrentIndex(panel.schedulerCombo.findData("cosine"))
    panel.earlyStoppingSpin.setValue(4)
    panel.gradClipSpin.setValue(1.5)
    panel.seedSpin.setValue(42)
    panel.deviceCombo.setCurrentIndex(panel.deviceCombo.findData("cpu"))

    cfg = panel.train_config()
    assert (cfg.epochs, cfg.batch_size, cfg.shuffle, cfg.optimizer) == (7, 32, False, "SGD")
    assert cfg.lr == pytest.approx(2.5e-4)
    assert cfg.weight_decay == pytest.approx(1e-5)
    assert (cfg.momentum, cfg.nesterov, cfg.scheduler) == (pytest.approx(0.8), True, "cosine")
    assert (cfg.early_stopping, cfg.grad_clip, cfg.seed, cfg.device) == (4, 1.5, 42, "cpu")
    cfg.validate()


def test_set_train_config_round_trip(panel):
    cfg = TrainConfig(epochs=12, batch_size=256, shuffle=False, optimizer="RMSprop", lr=3e-4, weight_decay=2e-5,
                      momentum=0.85, nesterov=False, loss="cross_entropy", scheduler="plateau", step_size=4,
                      gamma=0.5, plateau_factor=0.25, plateau_patience=6, early_stopping=5, grad_clip=2.5,
                      seed=None, device="cpu", threads=1)
    panel.set_train_config(cfg)
    assert panel.train_config() == cfg
    assert panel.seedSpin.text() == "random"

    sgd = dataclasses.replace(cfg, optimizer="SGD", nesterov=True, scheduler="step", seed=7, lr=1e-6)
    panel.set_train_config(sgd)
    assert panel.train_config() == sgd


def test_unknown_device_in_a_project_survives_the_round_trip(panel):
    panel.set_train_config(TrainConfig(device="cuda:7"))
    assert panel.train_config().device == "cuda:7"
    assert "not on this machine" in panel.deviceCombo.currentText()


@pytest.mark.parametrize("name, momentum, nesterov", [("SGD", True, True), ("Adam", False, False),
                                                      ("AdamW", False, False), ("RMSprop", True, False)])
def test_momentum_only_for_sgd_and_rmsprop(panel, name, momentum, nesterov):
    panel.optimizerCombo.setCurrentText(name)
    assert panel.momentumSpin.isEnabled() is momentum
    assert panel.nesterovCheck.isEnabled() is nesterov


def test_scheduler_settings_show_for_their_scheduler(panel):
    panel.show()
    form = panel._sched_form
    for name, step_rows, plateau_rows in (("none", False, False), ("step", True, False), ("plateau", False, True),
                                          ("cosine", False, False)):
        panel.schedulerCombo.setCurrentIndex(panel.schedulerCombo.findData(name))
        assert form.isRowVisible(panel.stepSizeSpin) is step_rows
        assert form.isRowVisible(panel.gammaSpin) is step_rows
        assert form.isRowVisible(panel.plateauFactorSpin) is plateau_rows
        assert form.isRowVisible(panel.plateauPatienceSpin) is plateau_rows


def test_set_can_train_disables_train_with_the_reason(qtbot, panel):
    panel.set_can_train(False, "layer 3 Linear: out_features must be a positive whole number")
    assert not panel.trainButton.isEnabled()
    assert panel.trainButton.toolTip() == "layer 3 Linear: out_features must be a positive whole number"
    with qtbot.assertNotEmitted(panel.train_requested):
        panel.trainButton.click()
    panel.set_can_train(True, "")
    assert panel.trainButton.isEnabled()
    with qtbot.waitSignal(panel.train_requested, timeout=1000):
        qtbot.mouseClick(panel.trainButton, Qt.MouseButton.LeftButton)


def test_buttons_follow_running_and_paused(qtbot, panel):
    assert panel.trainButton.isEnabled() and not panel.pauseButton.isEnabled() and not panel.stopButton.isEnabled()
    panel.set_running(True)
    assert not panel.trainButton.isEnabled() and panel.pauseButton.isEnabled() and panel.stopButton.isEnabled()
    assert not panel.epochsSpin.isEnabled()  # settings are frozen during a run
    with qtbot.waitSignal(panel.pause_requested, timeout=1000):
        panel.pauseButton.click()
    panel.set_paused(True)
    assert panel.pauseButton.text() == "Resume"
    with qtbot.waitSignal(panel.resume_requested, timeout=1000):
        panel.pauseButton.click()
    panel.set_paused(False)
    assert panel.pauseButton.text() == "Pause"
    with qtbot.waitSignal(panel.stop_requested, timeout=1000):
        panel.stopButton.click()
    panel.set_paused(True)
    panel.set_running(False)
    assert panel.trainButton.isEnabled() and not panel.pauseButton.isEnabled()
    assert panel.pauseButton.text() == "Pause" and panel.epochsSpin.isEnabled()


def test_progress_updates_lay_out_the_panel_only_when_the_text_needs_another_height(panel, qtbot, qapp):
    from PySide6.QtCore import QEvent, QObject

    panel.resize(360, 700)
    panel.show()
    qtbot.waitExposed(panel)
    requests: list[str] = []

    class Count(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.LayoutRequest and obj in (panel, panel._run_box):
                requests.append(obj.objectName())
            return False

    counter = Count()
    qapp.installEventFilter(counter)
    try:
        panel.set_running(True)  # its own changes (buttons, settings disabled) lay the panel out, once
        for step in (38, 39, 40):
            panel.on_progress({"epoch": 1, "epochs": 20, "step": step, "total_steps": 800, "elapsed": 1.0,
                               "eta": 19.0})
            qapp.processEvents()
        requests.clear()
        for step in range(41, 61):
            panel.on_progress({"epoch": 2, "epochs": 20, "step": step, "total_steps": 800, "elapsed": 1.0,
                               "eta": 800 / step})
            qapp.processEvents()
        assert requests == []  # a position of the same height: no layout pass for the panel and the window
        label = panel.progressLabel
        assert label.text() == "epoch 2/20 · step 60/800 · 13 s left"
        assert label.height() == label.heightForWidth(label.width()) and label.isVisible()
        one_line = label.height()

        label.setText("Training is not possible yet: " + "the table has no numeric column " * 4)
        # Taller now: the panel is laid out again, and the whole message shows.
        qtbot.waitUntil(lambda: "trainingPanel" in requests and label.height() > one_line
                        and panel._run_box.height() >= panel._run_box.sizeHint().height(), timeout=2000)
        assert label.height() == label.heightForWidth(label.width()) > one_line
        assert label.parentWidget().height() == label.height()
        bar = panel.progressBar.geometry()
        assert label.parentWidget().geometry().top() >= bar.bottom()  # below the bar, not over it
    finally:
        qapp.removeEventFilter(counter)


def test_progress_and_finish(panel):
    panel.set_running(True)
    panel.on_progress({"epoch": 3, "epochs": 20, "step": 120, "total_steps": 800, "elapsed": 1.2, "eta": 4.4})
    assert panel.progressBar.maximum() == 800 and panel.progressBar.value() == 120
    assert panel.progressLabel.text() == "epoch 3/20 · step 120/800 · 4 s left"
    panel.on_progress({"epoch": 0, "epochs": 20, "step": 0, "total_steps": 800, "elapsed": 0.0, "eta": None})
    assert panel.progressLabel.text() == "epoch 0/20 · step 0/800"
    panel.on_progress({"epoch": 5, "epochs": 20, "step": 200, "total_steps": 800, "elapsed": 2.0, "eta": 6.0})
    panel.on_finished("stopped")
    assert panel.progressBar.value() == 200 and panel.progressLabel.text().startswith("Stopped at epoch 5/20")
    panel.on_finished("completed")
    assert panel.progressBar.value() == panel.progressBar.maximum() == 800


def test_config_changed_on_edits_only(qtbot, panel):
    with qtbot.assertNotEmitted(panel.config_changed):
        panel.set_train_config(TrainConfig(epochs=3, optimizer="SGD"))
    with qtbot.waitSignal(panel.config_changed, timeout=1000):
        panel.epochsSpin.setValue(4)


def test_log_spin_box_steps_one_two_five(qtbot):
    lr = LogSpinBox(1e-6, 10.0)
    qtbot.addWidget(lr)
    lr.setValue(1e-3)
    seen = []
    for _ in range(3):
        lr.stepBy(1)
        seen.append(lr.value())
    assert seen == pytest.approx([2e-3, 5e-3, 1e-2])
    lr.setValue(1e-3)
    lr.stepBy(-1)
    assert lr.value() == pytest.approx(5e-4)
    assert lr.textFromValue(1e-5) == "1e-5" and lr.valueFromText("3e-4") == pytest.approx(3e-4)
    lr.setValue(1e-6)
    lr.stepBy(-1)
    assert lr.value() == pytest.approx(1e-6)  # floor

    decay = LogSpinBox(1e-6, 1.0, allow_zero=True)
    qtbot.addWidget(decay)
    decay.setValue(0.0)
    decay.stepBy(1)
    assert decay.value() == pytest.approx(1e-6)
    decay.stepBy(-1)
    assert decay.value() == 0.0


def test_format_duration():
    assert [format_duration(s) for s in (None, 4.4, 65, 3700)] == ["?", "4 s", "1 min 5 s", "1 h 1 min"]


def test_a_real_run_fills_the_progress_bar(qtbot, panel, tmp_path, flowers_csv):
    controller = TrainingController()
    panel.attach(controller)
    data = load_dataset(flowers_csv)
    panel.set_train_config(TrainConfig(epochs=3, batch_size=32, device="cpu"))

    class Owner:  # what the window does on train_requested: build a run from the panel's settings
        def start(self):
            cfg = RunConfig(base_dir=tmp_path)
            cfg.training = panel.train_config()
            controller.start(TrainingRun(cfg, data=data, tensorboard=False, checkpoint=False))

    owner = Owner()
    panel.train_requested.connect(owner.start)
    try:
        with qtbot.waitSignal(controller.running_changed, timeout=120_000, check_params_cb=lambda r: not r):
            panel.trainButton.click()
    finally:
        assert controller.shutdown()
    total = 3 * math.ceil(len(data.train) / 32)
    assert panel.progressBar.value() == panel.progressBar.maximum() == total
    assert panel.progressLabel.text().startswith(f"Completed · epoch 3/3 · step {total}/{total}")
    assert panel.trainButton.isEnabled() and not panel.stopButton.isEnabled()


def test_panel_grabs_in_a_dock_width(panel, tmp_path):
    panel.show()
    panel.resize(340, panel.sizeHint().height())
    image = panel.grab()
    assert not image.isNull() and image.width() == 340
    assert image.save(str(tmp_path / "training_panel.png"))
