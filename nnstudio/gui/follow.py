"""Follows a TensorBoard log folder that another process writes (`nnstudio train`, torchrun, any SummaryWriter).

A QTimer polls :class:`nnstudio.core.runs.RunFollower` in the GUI thread: each poll reads only the events
written since the last one (tensorboard's EventFileLoader keeps its position), a directory listing and a
few hundred bytes, so it stays well under a millisecond between bursts.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from nnstudio.core.runs import Curves, RunFollower

POLL_MS = 500


class FollowController(QObject):
    run_started = Signal(str)  # the run's name: a new run folder appeared (or the first one was found)
    points_arrived = Signal(object)  # Curves with only the new points
    checkpoint_appeared = Signal(str)
    status_changed = Signal(str)  # "running", "completed", "stopped", "failed", ...

    def __init__(self, parent: QObject | None = None, interval_ms: int = POLL_MS):
        super().__init__(parent)
        self.follower: RunFollower | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._checkpoint: Path | None = None
        self._status = ""

    @property
    def folder(self) -> Path | None:
        return self.follower.folder if self.follower else None

    @property
    def checkpoint(self) -> Path | None:
        return self._checkpoint

    def is_following(self) -> bool:
        return self._timer.isActive()

    def follow(self, folder: str | Path) -> None:
        self.follower = RunFollower(folder)
        self._checkpoint, self._status = None, ""
        self._timer.start()
        self.poll()

    def stop(self) -> None:
        self._timer.stop()

    def _on_timer_timeout(self) -> None:
        self.poll()

    def poll(self) -> None:
        if self.follower is None:
            return
        started, curves = self.follower.poll()
        if started:
            self._checkpoint, self._status = None, ""
            self.run_started.emit(self.follower.run_name)
        if len(curves):
            self.points_arrived.emit(curves)
        status = self.follower.status
        if status != self._status:
            self._status = status
            self.status_changed.emit(status)
        checkpoint = self.follower.checkpoint
        if checkpoint is not None and checkpoint != self._checkpoint:
            self._checkpoint = checkpoint
            self.checkpoint_appeared.emit(str(checkpoint))


def add_curves(loss_plot, metrics_plot, curves: Curves) -> None:
    """Hand a run's points to the plots through their public methods (the same ones live training uses)."""
    if len(curves.step_x):
        loss_plot.add_steps(curves.step_x.tolist(), curves.step_loss.tolist())
    if len(curves.epochs):
        val = [None if v != v else float(v) for v in curves.val_loss.tolist()]
        loss_plot.add_epochs(curves.epoch_step.tolist(), curves.train_loss.tolist(), val)
        epochs = curves.epochs.tolist()
        metrics = [{name: float(values[i]) for name, values in curves.metrics.items() if values[i] == values[i]}
                   for i in range(len(epochs))]
        metrics_plot.add_epochs(epochs, metrics)
        metrics_plot.add_lrs(epochs, curves.lr.tolist())
