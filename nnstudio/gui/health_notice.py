"""Training-health warnings in the window: core.training.health decides, this shows (status bar + non-modal notice)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox

from nnstudio.core.training.health import HealthWarning, OverfitWatch


class HealthNotifier(QObject):
    """Lives in the GUI thread; `watch()` makes the core callback for a run, which emits `warned` from the
    training thread; the queued delivery reaches `_on_self_warned` here, in the GUI thread."""

    warned = Signal(object)  # a HealthWarning, emitted in the training thread
    shown = Signal(object)  # the same, once the window shows it
    withdrawn = Signal(object, int)  # (the warning, the epoch of the new best), emitted in the training thread
    cleared = Signal(int)  # the window no longer shows the warning: the validation loss improved at that epoch

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self.window = window
        self.notice: QMessageBox | None = None
        self.last: HealthWarning | None = None
        # A permanent part of the status bar: the run's end replaces the transient message, not this.
        self.label = QLabel("")
        self.label.setObjectName("healthStatus")
        self.label.setStyleSheet("color: #b35900;")
        self.label.hide()
        window.statusBar().addPermanentWidget(self.label)
        self.warned.connect(self._on_self_warned, Qt.ConnectionType.QueuedConnection)
        self.withdrawn.connect(self._on_self_withdrawn, Qt.ConnectionType.QueuedConnection)

    def watch(self) -> OverfitWatch:
        """The callback for a new run (call in the GUI thread): the previous run's warning is cleared."""
        self.last = None
        self.label.clear()
        self.label.hide()
        return OverfitWatch(on_warning=self.warned.emit, on_withdrawn=self.withdrawn.emit)

    @Slot(object, int)
    def _on_self_withdrawn(self, warning: HealthWarning, epoch: int) -> None:
        self.last = None
        self.label.clear()
        self.label.hide()
        if self.notice is not None:
            self.notice.hide()
        self.window.statusBar().showMessage(
            f"overfitting warning withdrawn: the validation loss beat epoch {warning.best_epoch}'s at epoch {epoch}",
            10000)
        self.cleared.emit(epoch)

    @Slot(object)
    def _on_self_warned(self, warning: HealthWarning) -> None:
        self.last = warning
        self.label.setText(f"⚠ overfitting: best epoch {warning.best_epoch}")
        self.label.setToolTip(warning.message)
        self.label.show()
        self.window.statusBar().showMessage(
            f"⚠ overfitting: the validation loss is worse than at epoch {warning.best_epoch}, its best", 0)
        if self.notice is None:
            box = QMessageBox(QMessageBox.Icon.Warning, "Training health", "", QMessageBox.StandardButton.Ok,
                              self.window)
            box.setObjectName("healthNotice")
            box.setModal(False)
            box.setWindowModality(Qt.WindowModality.NonModal)
            self.notice = box
        self.notice.setText(warning.message)
        self.notice.show()
        self.shown.emit(warning)
