"""#20.2: in the window, a later best withdraws the overfitting warning from the status bar and the notice."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from nnstudio.core.training.events import EpochFinished


def _epoch(epoch, train, val):
    return EpochFinished(epoch, epoch * 10, train, val, {}, 0.01, 0.1, False)


def test_the_warning_goes_when_the_validation_loss_beats_its_best(qtbot, window):
    notifier = window.healthNotifier
    watch = notifier.watch()  # the callback a run gets; its signals are queued as from the training thread
    watch.on_fit_start(None, None)
    val = [0.9, 0.7, 0.5, 0.6, 0.65, 0.7]
    with qtbot.waitSignal(notifier.shown, timeout=5000):
        for i, v in enumerate(val, start=1):
            watch.on_epoch_end(None, _epoch(i, 1.0 - 0.05 * i, v))
    assert notifier.label.isVisible() and "best epoch 3" in notifier.label.text()
    notice = window.findChild(QMessageBox, "healthNotice")
    assert notice.isVisible()
    with qtbot.waitSignal(notifier.cleared, timeout=5000) as blocker:
        watch.on_epoch_end(None, _epoch(7, 0.6, 0.45))
    assert blocker.args == [7]
    assert not notifier.label.isVisible() and not notice.isVisible()
    assert "withdrawn" in window.statusBar().currentMessage() and "epoch 7" in window.statusBar().currentMessage()
