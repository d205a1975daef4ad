"""Continue training, fresh Train, close with an unsaved model, recovery of an unfinished run (issue 13)."""

from __future__ import annotations

import torch
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from nnstudio.gui.main_window import MainWindow

from guiwindow import load


def make_window(qtbot, tmp_path, name="w"):
    settings = QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, logdir=tmp_path / f"runs-{name}")
    qtbot.addWidget(w)
    w.show()
    return w


def run(qtbot, window, action, epochs):
    window.trainingPanel.epochsSpin.setValue(epochs)
    with qtbot.waitSignal(window.training_finished, timeout=60000) as blocker:
        action.trigger()
    return blocker.args[0]


def weights(window):
    return {k: v.detach().clone() for k, v in window.model.state_dict().items()}


def test_continue_equals_one_long_run_and_train_starts_fresh(qtbot, tmp_path, flowers_csv):
    long = make_window(qtbot, tmp_path, "long")
    load(qtbot, long, flowers_csv)
    run(qtbot, long, long.actionTrain, 4)
    expected = weights(long)
    long_history = [e.train_loss for e in long.last_run.trainer.history]
    long.model_unsaved = False
    long.shutdown()

    w = make_window(qtbot, tmp_path, "split")
    load(qtbot, w, flowers_csv)
    run(qtbot, w, w.actionTrain, 2)
    first_two = weights(w)
    assert w.actionContinue.isEnabled()
    info = run(qtbot, w, w.actionContinue, 2)
    assert info["epochs"] == 4
    trainer = w.last_run.trainer
    assert [e.epoch for e in trainer.history] == [1, 2, 3, 4]
    assert [e.train_loss for e in trainer.history] == long_history
    got = weights(w)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    # both parts went to one TensorBoard run folder, whose last.pt holds the 4 epochs
    from nnstudio.core.model.checkpoint import load_checkpoint

    assert load_checkpoint(w.last_run.run_dir / "last.pt").epoch == 4
    # Train starts again from the seeded initial weights: the same 2 epochs as the first time
    run(qtbot, w, w.actionTrain, 2)
    again = weights(w)
    assert all(torch.equal(again[k], first_two[k]) for k in first_two)
    assert [e.epoch for e in w.last_run.trainer.history] == [1, 2]
    w.model_unsaved = False
    w.shutdown()


def test_continue_says_what_differs(qtbot, tmp_path, houses_csv):
    w = make_window(qtbot, tmp_path)
    load(qtbot, w, houses_csv)
    run(qtbot, w, w.actionTrain, 1)
    assert w.actionContinue.isEnabled()
    w.datasetPanel.set_choices(target="rooms", task="multiclass")
    qtbot.waitUntil(lambda: not w.actionContinue.isEnabled())
    assert "price" in w.actionContinue.toolTip() and "rooms" in w.actionContinue.toolTip()
    w._continue_next = True
    with qtbot.waitSignal(w.error_shown) as blocker:
        w._on_train_requested()
    assert "price" in blocker.args[0]
    w.model_unsaved = False
    w.shutdown()


def test_closing_with_an_unsaved_model_asks(qtbot, tmp_path, flowers_csv):
    w = make_window(qtbot, tmp_path)
    load(qtbot, w, flowers_csv)
    run(qtbot, w, w.actionTrain, 1)
    assert w.model_unsaved
    w.close()
    box = w.findChild(QMessageBox, "saveBeforeCloseDialog")
    assert box is not None and w.isVisible()
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: w.findChild(QMessageBox, "saveBeforeCloseDialog") is None or
                    not w.findChild(QMessageBox, "saveBeforeCloseDialog").isVisible())
    assert w.isVisible()
    w.checkpoint_path = tmp_path / "saved.pt"
    w.close()
    box = w.findChild(QMessageBox, "saveBeforeCloseDialog")
    box.button(QMessageBox.StandardButton.Save).click()
    qtbot.waitUntil(lambda: not w.isVisible())
    assert (tmp_path / "saved.pt").exists() and not w.model_unsaved


def test_unfinished_run_is_offered_back_with_its_history(qtbot, tmp_path, flowers_csv):
    """A run that never finished (here: its fit ended by a crash the window did not see) is offered at start."""
    from nnstudio.core.config import RunConfig
    from nnstudio.core.training.recovery import find_unfinished, mark_unfinished
    from nnstudio.core.run import TrainingRun

    cfg = RunConfig()
    cfg.data.path = str(flowers_csv)
    cfg.training.epochs, cfg.training.device, cfg.training.threads = 3, "cpu", 1
    cfg.output.logdir = str(tmp_path / "runs-w")
    cfg.output.checkpoint = ""
    crashed = TrainingRun(cfg, checkpoint=False)
    crashed.execute()
    mark_unfinished(crashed.run_dir)
    w = make_window(qtbot, tmp_path)
    with qtbot.waitSignal(w.recovery_offered) as blocker:
        box = w.offer_recovery()
    assert blocker.args[0] == str(crashed.run_dir)
    box.button(QMessageBox.StandardButton.Open).click()
    qtbot.waitUntil(lambda: w.loaded_checkpoint is not None)
    assert w.loaded_checkpoint.epoch == 3
    assert find_unfinished(tmp_path / "runs-w") == []
    assert w.actionContinue.isEnabled() or w.datasetPanel.dataframe() is None
    w.shutdown()


def test_window_warns_when_the_loss_climbs_far_above_its_best(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    epochs = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}, {"epoch": 3, "train_loss": 8.0}]
    with qtbot.waitSignal(w.loss_warned) as blocker:
        w._check_climb(epochs[:2])
        w._check_climb(epochs[2:])
    assert "epoch 3" in blocker.args[0] and "16×" in blocker.args[0] and "epoch 2" in blocker.args[0]
    w.shutdown()
